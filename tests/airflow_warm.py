"""A warm ``airflow`` command: one interpreter imports Airflow once, then forks a child per command.

Every ``airflow`` command of the tests (``dags test``, ``tasks test``, ``connections test`` ...)
used to start a new interpreter: about 5 s of CPU to import Airflow, and for ``dags test`` and
``tasks test`` about 10 s more to build the in-process execution API (Cadwyn generates a router
per API version). That was most of ``make test``'s CPU. Here a server process does both once, for
one import environment, and each command runs in a fresh fork of it: the real CLI entry point
(``airflow.__main__.main``) with the command's arguments, environment, folder and its own stdout
and stderr files, in a process of its own that exits with the command's status.

What a fork shares with its server is only what a fresh ``airflow`` process would compute the same
way from the same import environment: the server is keyed by every variable that can change what
Airflow reads when it is imported (AIRFLOW_HOME, the database, the DAGs folder, every
``AIRFLOW__`` setting, PYTHONPATH ...). Only what is read when used may differ per command:
connections and variables from the environment (``AIRFLOW_CONN_``, ``AIRFLOW_VAR_``), the
provider's own ``KWTSMS_`` settings and TMPDIR. Of our provider, the server imports only what
Airflow's provider discovery imports (its registration, ``get_provider_info``); each command
imports the rest, as a fresh process does.

Run as a script, this module is the server: it reads one JSON request per line on stdin and
answers one JSON line on stdout. ``WarmAirflow`` in the test process starts and talks to it.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

# Read when used, never when Airflow is imported: may differ between a server and its commands.
PER_COMMAND_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "KWTSMS_")
PER_COMMAND_NAMES = frozenset({"TMPDIR"})


def import_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What a server must have been started with to run a command with ``env``."""
    return tuple(
        sorted(
            (name, value)
            for name, value in env.items()
            if name not in PER_COMMAND_NAMES and not name.startswith(PER_COMMAND_PREFIXES)
        )
    )


# Set (to anything) to run every command in a new ``airflow`` process, as before this module.
COLD_ENV = "KWTSMS_TESTS_COLD_AIRFLOW"
# Servers kept per test process: a worker meets two or three import environments (the tests' DAG
# folder, the examples' ...); the least recently used one goes when a new one is needed.
MAX_SERVERS = 3
_servers: dict[tuple[tuple[str, str], ...], WarmAirflow] = {}


def warm_server(env: Mapping[str, str], cwd: str | Path) -> WarmAirflow:
    """The started server for ``env``'s import environment (started when there is none)."""
    key = import_key(env)
    server = _servers.pop(key, None)
    if server is None or not server.alive():
        while len(_servers) >= MAX_SERVERS:
            _servers.pop(next(iter(_servers))).close()
        server = WarmAirflow(env, str(cwd))
    _servers[key] = server  # the most recently used last
    return server


def close_warm_servers() -> None:
    while _servers:
        _servers.popitem()[1].close()


class WarmAirflow:
    """A started server for one import environment; :meth:`run` is ``subprocess.run`` for one
    ``airflow`` command (one at a time per server)."""

    def __init__(self, env: Mapping[str, str], cwd: str) -> None:
        self.key = import_key(env)
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            env=dict(self.key),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the server's own troubles go to the test's stderr
            bufsize=0,
        )
        self._pending = b""
        ready = self._readline(600)
        if not ready.startswith("ready"):
            self.close()
            raise RuntimeError(f"the warm Airflow server did not start: {ready!r}")

    def _readline(self, timeout: float | None) -> str:
        """The server's next line, "" when it closed its end; TimeoutError after ``timeout`` s.
        Unbuffered, so that a wait with a timeout sees every byte that came."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._pending:
            with selectors.DefaultSelector() as selector:
                selector.register(fd, selectors.EVENT_READ)
                if not selector.select(timeout):
                    raise TimeoutError
            chunk = os.read(fd, 65536)
            if not chunk:
                return ""
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, args: list[str], env: Mapping[str, str], cwd: str, timeout: float) -> tuple[int, str, str]:
        """Run ``airflow <args>`` in a fork: (exit status, stdout, stderr), as ``subprocess.run``
        would give them; ``subprocess.TimeoutExpired`` after ``timeout`` s (the fork killed)."""
        assert self._proc.stdin is not None
        with self._lock, tempfile.TemporaryDirectory(prefix="airflow-output-") as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"args": args, "env": dict(env), "cwd": cwd, "stdout": str(out), "stderr": str(err)}
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
            started = json.loads(self._readline(60) or "null")  # {"pid": ...}
            if not started:
                raise RuntimeError("the warm Airflow server died")
            try:
                line = self._readline(timeout)
            except TimeoutError:  # a hang: stop it as subprocess.run would
                os.kill(started["pid"], signal.SIGKILL)
                self._readline(60)  # the server reaps it and reports
                raise subprocess.TimeoutExpired(["airflow", *args], timeout) from None
            if not line:
                raise RuntimeError("the warm Airflow server died")
            read = [f.read_text(encoding="utf-8", errors="replace") for f in (out, err)]
            return int(json.loads(line)["returncode"]), read[0], read[1]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# --- the server ------------------------------------------------------------------------------------


def _warm_up() -> None:
    """Import what every command imports, and build the in-process execution API once."""
    import airflow  # reads the configuration: the import environment
    import airflow.__main__
    import airflow.cli.cli_parser  # noqa: F401

    try:
        from airflow.sdk.execution_time.supervisor import in_process_api_server
    except ImportError:
        return
    app = in_process_api_server().app
    # The execution API is a Cadwyn app mounted in a FastAPI app: generate its versioned routers
    # now (Cadwyn does it on the first request; a request would start a2wsgi's event-loop thread,
    # and a thread does not survive a fork).
    for candidate in [app, *(getattr(route, "app", None) for route in getattr(app, "routes", ()))]:
        initialize = getattr(candidate, "_cadwyn_initialize", None)
        if initialize is not None and not getattr(candidate, "_cadwyn_initialized", True):
            initialize()


def _child(request: dict) -> None:
    """In the fork: become ``airflow <args>`` with the command's environment; never returns."""
    code = 1
    try:
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (out, err, null):
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        tempfile.tempdir = None  # TMPDIR is the command's
        sys.argv = ["airflow", *request["args"]]
        from airflow.__main__ import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    # Answers go on a private copy of stdout; whatever Airflow prints goes to stderr.
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _warm_up()
    answer.write("ready\n")
    answer.flush()
    for line in sys.stdin:
        request = json.loads(line)
        answer.flush()
        pid = os.fork()
        if pid == 0:
            answer.close()
            _child(request)
        answer.write(json.dumps({"pid": pid}) + "\n")
        answer.flush()
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            result = {"returncode": -os.WTERMSIG(status)}
        else:
            result = {"returncode": os.WEXITSTATUS(status)}
        answer.write(json.dumps(result) + "\n")
        answer.flush()


if __name__ == "__main__":
    serve()
