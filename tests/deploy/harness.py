"""A whole Airflow deployment on loopback, for the `deploy` tests: processes, databases, REST API.

Everything runs from a temporary folder and stops when the test session ends: a Postgres cluster
(initdb in the folder, its own port, as ``nobody`` when started as root), a Redis broker, the
sandbox gateway as its own process (``kwtsms-sandbox``), and Airflow's scheduler, DAG processor,
triggerer, API server and (CeleryExecutor) two Celery workers. Runs are triggered and watched
through the public REST API (v2) with a JWT from ``/auth/token``, as a user's tooling does.

Every process writes its output to ``<run>/logs/<name>.log``; ``keep_logs()`` copies them to
test-artifacts/ when a scenario fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: airflow_support
from airflow_support import stop_couriers

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "test-artifacts"
DEPLOY_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = REPO / "dags_examples"
ADMIN = "admin"
# Both sandboxes run the gateway's firewall (on by default: more than 5 requests begun within any
# one second from one address blocks it); every process here is 127.0.0.1, as the machines of one
# company are one public address to the gateway. No HTTP 429 tool: the documented gateway has none.
CAPPED_RATE = 2.0  # scenario (e): one account's pace, the rate v4.1 recommends
FIREWALL_LIMIT = 5  # requests begun within any one second (kwtSMS API v4.1)
BALANCE = 10_000_000


class SetupError(RuntimeError):
    """Something the deployment needs is missing; the message says what to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; raise naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"{what}: not done after {timeout:.0f} s (last: {last!r})")


# --- processes -----------------------------------------------------------------------------------

# The gateway is another machine: the Airflow side (every component and its task processes) runs at a
# lower priority than the sandbox, so that on a loaded test machine the sandbox reads each request
# when it arrives. Its firewall counts arrivals in a sliding second with no slack of its own; a
# handler woken 50 ms late would count a burst that the client never sent (the client's own start
# jitter stays: the pacer's 100 ms of slack at rate 5 covers it, constants.FIREWALL_SLACK).
AIRFLOW_NICE = 5


@dataclass
class Proc:
    """One long-running process in its own session (so a signal reaches its whole group)."""

    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    user: str | None = None  # run as this user (via runuser) when we are root
    nice: int = 0  # scheduling priority (see AIRFLOW_NICE)
    popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        args = self.args
        if self.nice:
            args = ["nice", "-n", str(self.nice), *args]
        if self.user and os.geteuid() == 0:
            args = ["runuser", "-u", self.user, "--", *args]
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its forked children)."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(5)
        # children that left the group's leader behind
        self.kill(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# --- Postgres and Redis --------------------------------------------------------------------------


def postgres_bin(name: str) -> Path:
    """A Postgres server binary: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for folder in versions:
        if (folder / name).exists():
            return folder / name
    raise SetupError(
        f"Postgres's {name} is not installed: the deploy tests run the metadata database on "
        "Postgres. Install it with `apt-get install postgresql` (Debian/Ubuntu) or put its bin "
        "folder on PATH."
    )


@dataclass
class Postgres:
    root: Path
    logs: Path
    port: int = field(default_factory=free_port)
    proc: Proc | None = None
    user: str | None = None
    data: Path | None = None

    def start(self) -> Postgres:
        initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
        self.user = "nobody" if os.geteuid() == 0 else None  # Postgres refuses to run as root
        # Its own folder under /tmp: the unprivileged user must reach it (our run folder is 0700).
        self.data = data = Path(tempfile.mkdtemp(prefix="kwtsms-deploy-pg-"))
        if self.user:
            shutil.chown(data, self.user)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        args = [str(initdb), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync"]
        if self.user:
            args = ["runuser", "-u", self.user, "--", *args]
        done = subprocess.run(args, env=env, capture_output=True, text=True, cwd="/", check=False)
        if done.returncode:
            raise SetupError(f"initdb failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        settings = [
            "-p", str(self.port), "-h", "127.0.0.1", "-k", str(data),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=400", "-c", "shared_buffers=128MB",
        ]  # fmt: skip
        self.proc = Proc("postgres", [str(postgres), "-D", str(data), *settings], self.logs / "postgres.log",
                         env, user=self.user).start()  # fmt: skip
        wait_for("Postgres accepting connections", self._ready, 60)
        return self

    def _ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.dsn("postgres")).close()
        except psycopg2.OperationalError:
            if self.proc is not None and not self.proc.alive():
                raise SetupError(f"Postgres exited:\n{self.proc.output()[-3000:]}") from None
            return False
        return True

    def dsn(self, database: str) -> str:
        return f"postgresql://airflow@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.dsn(name)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)


def redis_server_bin() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise SetupError(
            "redis-server is not installed: the CeleryExecutor deployment uses Redis as its broker. "
            "Install it with `apt-get install redis-server` (`make test` runs .ci/install-deploy.sh, "
            "which does that when it is missing)."
        )
    return found


@dataclass
class Redis:
    root: Path
    logs: Path
    port: int = field(default_factory=free_port)
    proc: Proc | None = None

    def start(self) -> Redis:
        self.root.mkdir(parents=True, exist_ok=True)
        args = [redis_server_bin(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "yes"]  # fmt: skip
        self.proc = Proc("redis", args, self.logs / "redis.log", dict(os.environ)).start()
        wait_for("Redis answering PING", self._ready, 30)
        return self

    def _ready(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=2).ping())
        except redis.ConnectionError:
            if self.proc is not None and not self.proc.alive():
                raise SetupError(f"redis-server exited:\n{self.proc.output()[-3000:]}") from None
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


# --- the sandbox as its own process --------------------------------------------------------------


class SandboxProcess:
    """``kwtsms-sandbox`` in its own process, driven through its /sandbox/ HTTP controls."""

    def __init__(self, name: str, logs: Path, *, username: str, password: str, **options: Any):
        self.name = name
        self.username = username
        self.password = password
        self.port = free_port()
        args = [str(BIN / "kwtsms-sandbox"), "--port", str(self.port), "--no-smtp", "--username", username,
                "--password", password, "--no-doc-account"]  # fmt: skip
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = Proc(name, args, logs / f"{name}.log", dict(os.environ))
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SandboxProcess:
        self.proc.start()
        wait_for(
            f"{self.name} listening", lambda: self.http.get(self.url + "/sandbox/account", timeout=2).ok, 30
        )
        return self

    def stop(self) -> None:
        self.proc.stop()

    def _get(self, what: str) -> Any:
        answer = self.http.get(f"{self.url}/sandbox/{what}", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def messages(self) -> list[dict]:
        return self._get("messages")["messages"]

    def requests(self) -> list[dict]:
        return self._get("requests")["requests"]

    def account(self) -> dict:
        return self._get("account")

    def firewall(self) -> dict:
        """The firewall's figures since the last reset: blocks, busiest second, blocks in force."""
        return self._get("firewall")["firewall"]

    def reset(self) -> None:
        self.http.post(self.url + "/sandbox/reset", json={}, timeout=10).raise_for_status()

    def fault(self, kind: str, endpoint: str = "send", times: int = 1) -> None:
        body = {"kind": kind, "endpoint": endpoint, "times": times}
        self.http.post(self.url + "/sandbox/faults", json=body, timeout=10).raise_for_status()

    def set_balance(self, available: int) -> None:
        self.http.post(
            self.url + "/sandbox/balance", json={"available": available}, timeout=10
        ).raise_for_status()


def recipient_counts(messages: Iterable[dict]) -> dict[str, int]:
    """How many accepted messages each number received."""
    counts: dict[str, int] = {}
    for message in messages:
        for number in message["mobile"]:
            counts[number] = counts.get(number, 0) + 1
    return counts


@dataclass
class Delivery:
    """What the sandbox received for one scenario, against the recipients it should have received."""

    expected: int
    once: int
    twice: int
    missing: int
    refused: int  # requests the gateway's firewall refused (or an HTTP 429)

    @classmethod
    def of(cls, expected: Iterable[str], messages: Iterable[dict], requests_: Iterable[dict]) -> Delivery:
        want = set(expected)
        counts = recipient_counts(messages)
        return cls(
            expected=len(want),
            once=sum(1 for n in want if counts.get(n) == 1),
            twice=sum(1 for n in want if counts.get(n, 0) > 1),
            missing=sum(1 for n in want if n not in counts),
            refused=sum(1 for r in requests_ if r.get("blocked") or r.get("http_status") == 429),
        )


# --- Airflow -------------------------------------------------------------------------------------


@dataclass
class Deployment:
    """An Airflow deployment (LocalExecutor or CeleryExecutor) over one Postgres database."""

    executor: str  # "local" or "celery"
    root: Path
    postgres: Postgres
    redis: Redis | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    http: requests.Session = field(default_factory=requests.Session)
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "airflow_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def build_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        dags = self.root / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for source in [*EXAMPLE_DAGS.glob("*.py"), *DEPLOY_DAGS.glob("*.py")]:
            shutil.copy(source, dags / source.name)
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({ADMIN: self.admin_password}))
        db = self.postgres.create_database(f"airflow_{self.executor}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KWTSMS_RATE_DIR"))}
        env.update(
            {
                "TMPDIR": self.host_tmp(0),  # the scheduler's machine (LocalExecutor: every task's too)
                "AIRFLOW_HOME": str(self.home),
                "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
                "PYTHONPATH": str(REPO),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if self.executor == "celery" else "LocalExecutor",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "300",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
                "AIRFLOW__API__BASE_URL": self.api,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,  # the same in every process
                "AIRFLOW__API__SECRET_KEY": self.jwt_secret,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.replace("postgresql://", "postgresql+psycopg2://"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
                # DAG-level callbacks run in the DAG processor's children: their logs are kept too
                "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(self.logs / "dag_proc"),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__WEBSERVER__EXPOSE_CONFIG": "False",
            }
        )
        if self.redis is not None:
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
                    + db.replace("postgresql://", "postgresql+psycopg://"),
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "8",
                    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                    "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
                }
            )
        self.env = env
        return env

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        (self.logs / "cli.log").open("a").write(f"$ airflow {' '.join(args)}\n{done.stdout}\n{done.stderr}\n")
        if done.returncode:
            raise SetupError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done

    def _proc(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(
            name, [str(BIN / "airflow"), *args], self.logs / f"{name}.log", env or self.env, nice=AIRFLOW_NICE
        ).start()
        self.procs[name] = proc
        return proc

    def host_tmp(self, host: int) -> str:
        """The temp folder of one emulated machine: what the provider shares between the processes
        of a machine (the machine-wide pacer's file, the coverage cache) lives under it."""
        path = self.root / f"host-{host}" / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def worker_env(self, index: int) -> dict[str, str]:
        env = dict(self.env)
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())  # two workers, one host
        env["TMPDIR"] = self.host_tmp(index)  # each Celery worker is a machine of its own
        return env

    def start_worker(self, index: int) -> Proc:
        name = f"worker{index}"
        return self._proc(
            name, "celery", "worker", "--celery-hostname", f"{name}@deploy-host-{index}", "--queues",
            f"default,{name}", "--concurrency", "8", "--without-mingle", "--without-gossip",
            env=self.worker_env(index),
        )  # fmt: skip

    def start(self) -> Deployment:
        started = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.build_env()
        self.airflow("db", "migrate", timeout=600)
        self.timings["migrate"] = time.monotonic() - started
        self._proc("api-server", "api-server", "--port", str(self.api_port), "--host", "127.0.0.1")
        self._proc("scheduler", "scheduler")
        self._proc("dag-processor", "dag-processor")
        self._proc("triggerer", "triggerer")
        if self.executor == "celery":
            self.start_worker(1)
            self.start_worker(2)
        wait_for("the API server answering /api/v2/version", self._api_ready, 180)
        self.login()
        self.timings["start"] = time.monotonic() - started
        return self

    def _api_ready(self) -> bool:
        for proc in self.procs.values():
            if not proc.alive():
                raise SetupError(f"{proc.name} exited:\n{proc.output()[-4000:]}")
        return self.http.get(self.api + "/api/v2/monitor/health", timeout=5).ok

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        stop_couriers(str(self.root))  # the storm guard's detached couriers outlive their workers

    def keep_logs(self, label: str) -> Path:
        """Copy every process's log (and the task logs) to test-artifacts/deploy-<label>/."""
        target = ARTIFACTS / f"deploy-{self.executor}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.logs, target, dirs_exist_ok=True)
        return target

    # --- the REST API ----------------------------------------------------------------------------

    def login(self) -> None:
        answer = self.http.post(
            self.api + "/auth/token", json={"username": ADMIN, "password": self.admin_password}, timeout=30
        )
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 60)
        answer = self.http.request(method, self.api + "/api/v2" + path, **kwargs)
        if answer.status_code == 401:  # the token expired: a long session
            self.login()
            answer = self.http.request(method, self.api + "/api/v2" + path, **kwargs)
        if not answer.ok:
            raise AssertionError(f"{method} {path} -> {answer.status_code}: {answer.text[:2000]}")
        return answer.json() if answer.content else None

    def create_connection(self, conn_id: str, sandbox: SandboxProcess, **extra: Any) -> dict:
        body = {
            "connection_id": conn_id,
            "conn_type": "kwtsms",
            "host": sandbox.url,
            "login": sandbox.username,
            "password": sandbox.password,
            "extra": json.dumps(extra),
        }
        with contextlib.suppress(AssertionError):
            self.call("DELETE", f"/connections/{conn_id}")
        return self.call("POST", "/connections", json=body)

    def set_pool(self, name: str, slots: int) -> None:
        try:
            self.call("PATCH", f"/pools/{name}", json={"name": name, "slots": slots})
        except AssertionError:
            self.call("POST", "/pools", json={"name": name, "slots": slots})

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        def parsed() -> bool:
            answer = self.http.get(f"{self.api}/api/v2/dags/{dag_id}", timeout=10)
            return answer.ok

        wait_for(f"DAG {dag_id} parsed by the DAG processor", parsed, timeout, interval=1)

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        return wait_for(
            f"run {dag_id}/{run_id} finished",
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout,
            interval=1,
        )

    def expect_run(self, dag_id: str, run_id: str, state: str, timeout: float = 300) -> None:
        """Wait for the run to finish; when it ends otherwise than ``state``, fail with what each
        task instance that did not succeed printed last (a deployment's failure names its cause)."""
        ended = self.wait_run(dag_id, run_id, timeout)
        if ended != state:
            raise AssertionError(
                f"run {dag_id}/{run_id} ended {ended}, not {state}\n{self.why(dag_id, run_id)}"
            )

    def why(self, dag_id: str, run_id: str, lines: int = 25) -> str:
        """The task instances of a run that did not succeed, each with the end of its last try's log."""
        out = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] in ("success", "skipped"):
                continue
            name = f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]
            out.append(f"--- {name}: {ti['state']}, try {ti['try_number']}")
            if ti["try_number"]:
                try:
                    log = self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
                except (requests.RequestException, OSError) as exc:
                    log = f"(log unreadable: {exc!r})"
                out.extend(log.splitlines()[-lines:])
        return "\n".join(out) or "(every task instance succeeded)"

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        answer = self.http.get(
            f"{self.api}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
            timeout=60,
        )
        answer.raise_for_status()
        return answer.text

    def xcoms(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries"
        entries = self.call("GET", path, params={"map_index": map_index})["xcom_entries"]
        out = []
        for entry in entries:
            full = self.call(
                "GET", f"{path}/{entry['key']}", params={"map_index": map_index, "stringify": "true"}
            )
            out.append(full)
        return out


def process_logs(deployment: Deployment, *others: Proc) -> dict[str, str]:
    """Every log the deployment's processes wrote (task logs included), by file name."""
    found: dict[str, str] = {}
    for path in deployment.logs.rglob("*"):
        if path.is_file():
            found[str(path.relative_to(deployment.logs))] = path.read_text(errors="replace")
    for proc in others:
        found[proc.name] = proc.output()
    return found


@dataclass
class Site:
    """A running deployment with its sandboxes: the main one, the capped one of scenario (e), and
    the storm's of scenario (f), which runs beside the others (its own account and connection)."""

    deployment: Deployment
    sandbox: SandboxProcess
    capped: SandboxProcess
    storm: SandboxProcess
    rate_store: str  # the shared limiter's store in this deployment: the broker, or Postgres
    # What a scenario began and a later test checks (scenarios (e) and (f) run beside the others),
    # by scenario; its "sandbox" is left out of the other tests' resets until then.
    pending: dict[str, Any] = field(default_factory=dict)

    def sandboxes(self) -> dict[str, SandboxProcess]:
        return {"main": self.sandbox, "capped": self.capped, "storm": self.storm}

    @property
    def executor(self) -> str:
        return self.deployment.executor


@contextlib.contextmanager
def running_site(executor: str, postgres: Postgres, root: Path) -> Iterator[Site]:
    """A deployment of ``executor`` ("local" or "celery") with its sandboxes and connections.

    Connections (created through the REST API, as a user does in the UI): ``kwtsms_default`` (the
    main sandbox), ``kwtsms_slow`` (the same at 1 request/s, so a send can be killed midway; a 10 s
    read timeout), ``kwtsms_capped`` (the capped sandbox, each task pacing itself),
    ``kwtsms_capped_shared`` (the same with the shared limiter: Redis under Celery, Postgres under
    LocalExecutor) and ``kwtsms_storm`` (the storm's sandbox, scenario (f)).
    """
    logs = root / "logs"
    redis = Redis(root / "redis", logs) if executor == "celery" else None
    password = "pw-" + secrets.token_urlsafe(12)  # searched for in every log afterwards
    sandbox = SandboxProcess(
        "sandbox", logs, username="deploy_user", password=password,
        balance=BALANCE, queue_size=1_000_000, drain_rate=100_000, deliver_after=0,
    )  # fmt: skip
    capped = SandboxProcess(
        "sandbox-capped", logs, username="capped_user", password=password,
        balance=BALANCE, queue_size=1_000_000, drain_rate=100_000, deliver_after=0,
    )  # fmt: skip
    storm = SandboxProcess(
        "sandbox-storm", logs, username="storm_user", password=password,
        balance=BALANCE, queue_size=1_000_000, drain_rate=100_000, deliver_after=0,
    )  # fmt: skip
    deployment = Deployment(executor, root, postgres, redis)
    started: list[Any] = []
    try:
        for part in (redis, sandbox, capped, storm, deployment):
            if part is not None:
                part.start()
                started.append(part)
        if redis is not None:
            store = redis.url.replace("/0", "/1")  # the broker's server, its own database number
        else:
            store = postgres.create_database(f"kwtsms_rate_{executor}")
        # 5: the gateway's documented maximum (its firewall blocks the IP above it; kwtSMS API v4.1).
        # One machine (LocalExecutor) shares it with no configuration (machine_rate); Celery's
        # workers are machines of their own, so there every connection shares it through the
        # broker, as docs/deploying.md tells users to.
        shared = {"rate_store": store} if executor == "celery" else {}
        deployment.create_connection("kwtsms_default", sandbox, rate=5, **shared)
        # timeout 10: a retry waits out a killed or frozen try's last request (connect 5 s + read)
        # before judging it from the balance; the default read timeout (30 s) adds 20 s to (d), (h)
        deployment.create_connection("kwtsms_slow", sandbox, rate=1, timeout=10, **shared)
        deployment.create_connection("kwtsms_capped", capped, rate=CAPPED_RATE)
        deployment.create_connection("kwtsms_capped_shared", capped, rate=CAPPED_RATE, rate_store=store)
        deployment.create_connection("kwtsms_storm", storm, rate=5, **shared)
        deployment.set_pool("kwtsms", 1)
        deployment.set_pool("kwtsms_capped", 1)
        yield Site(deployment, sandbox, capped, storm, store)
    except BaseException:
        deployment.keep_logs("startup")
        raise
    finally:
        for part in reversed(started):
            part.stop()
