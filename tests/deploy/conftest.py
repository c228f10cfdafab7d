"""Fixtures of the deployment tests: one Postgres per session, one deployment per executor.

Every test here is marked ``deploy``. The deployments start once per executor (LocalExecutor,
then CeleryExecutor) and the scenarios run one after another against the same processes; each
scenario starts from a reset sandbox. A failed scenario copies every process's log to
test-artifacts/deploy-<executor>-<test>/.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import BALANCE, CAPPED_RATE, MAIN_RATE, Deployment, Postgres, Redis, SandboxProcess, Site

collect_ignore = ["dags"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.deploy)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def deploy_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="kwtsms-deploy-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(deploy_root: Path) -> Iterator[Postgres]:
    server = Postgres(deploy_root / "postgres", deploy_root / "logs")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["local", "celery"])
def site(request: pytest.FixtureRequest, postgres: Postgres, deploy_root: Path) -> Iterator[Site]:
    executor = request.param
    root = deploy_root / executor
    logs = root / "logs"
    redis = Redis(root / "redis", logs) if executor == "celery" else None
    password = "pw-" + secrets.token_urlsafe(12)  # searched for in every log afterwards
    sandbox = SandboxProcess(
        "sandbox", logs, username="deploy_user", password=password, rate=MAIN_RATE,
        balance=BALANCE, queue_size=1_000_000, drain_rate=100_000, deliver_after=0,
    )  # fmt: skip
    capped = SandboxProcess(
        "sandbox-capped", logs, username="capped_user", password=password, rate=CAPPED_RATE,
        balance=BALANCE, queue_size=1_000_000, drain_rate=100_000, deliver_after=0,
    )  # fmt: skip
    deployment = Deployment(executor, root, postgres, redis)
    started = []
    try:
        for part in (redis, sandbox, capped, deployment):
            if part is not None:
                part.start()
                started.append(part)
        if redis is not None:
            store = redis.url.replace("/0", "/1")  # the broker's server, its own database number
        else:
            store = postgres.create_database(f"kwtsms_rate_{executor}")
        deployment.create_connection("kwtsms_default", sandbox, rate=MAIN_RATE * 0.8)
        deployment.create_connection("kwtsms_slow", sandbox, rate=1)
        deployment.create_connection("kwtsms_capped", capped, rate=CAPPED_RATE)
        deployment.create_connection("kwtsms_capped_shared", capped, rate=CAPPED_RATE, rate_store=store)
        deployment.set_pool("kwtsms", 1)
        deployment.set_pool("kwtsms_capped", 1)
        yield Site(deployment, sandbox, capped, store)
    except BaseException:
        deployment.keep_logs("startup")
        raise
    finally:
        for part in reversed(started):
            part.stop()


@pytest.fixture
def deploy(site: Site, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The running deployment, with fresh sandboxes; keeps every log when the test fails."""
    site.sandbox.reset()
    site.capped.reset()
    yield site
    if request.node.stash.get(_FAILED, True):
        site.deployment.keep_logs(request.node.name)
