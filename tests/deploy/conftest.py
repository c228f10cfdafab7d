"""Fixtures of the deployment tests: one Postgres per session, one deployment per executor.

Every test here is marked ``deploy``. The deployments start once per executor (LocalExecutor
and CeleryExecutor; `make test` runs the two side by side, one pytest each) and each one's
scenarios run one after another against the same processes; each
scenario starts from a reset sandbox. A failed scenario copies every process's log to
test-artifacts/deploy-<executor>-<test>/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Postgres, Site, running_site

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


# `make test` runs one pytest per executor side by side (KWTSMS_DEPLOY_EXECUTORS=local, =celery):
# two deployments at once, each with its own Postgres, sandboxes and ports.
EXECUTORS = os.environ.get("KWTSMS_DEPLOY_EXECUTORS", "local,celery").split(",")


@pytest.fixture(scope="session", params=EXECUTORS)
def site(request: pytest.FixtureRequest, postgres: Postgres, deploy_root: Path) -> Iterator[Site]:
    with running_site(request.param, postgres, deploy_root / request.param) as started:
        yield started


@pytest.fixture
def deploy(site: Site, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The running deployment, with fresh sandboxes (but those of a scenario begun earlier and
    still running beside: see ``Site.pending``); keeps every log when the test fails."""
    owned = {begun["sandbox"] for begun in site.pending.values()}
    for name, sandbox in site.sandboxes().items():
        if name not in owned:
            sandbox.reset()
    yield site
    if request.node.stash.get(_FAILED, True):
        site.deployment.keep_logs(request.node.name)
