"""``python -m airflow_provider_kwtsms.demo`` (what ``make demo`` runs): the provider end to end.

1. Sets up an Airflow home (./airflow-home, SQLite; ``KWTSMS_DEMO_HOME`` to change it).
2. Starts the kwtSMS sandbox on 127.0.0.1:8765 (or a free port if that one is taken).
3. Points the ``kwtsms_default`` connection at it (``AIRFLOW_CONN_KWTSMS_DEFAULT``).
4. Runs example (a), dry run -> balance gate -> send, with ``airflow dags test``.
5. Prints what the sandbox received and the inbox URL; keeps the sandbox up until Ctrl-C when
   run from a terminal, exits at once otherwise.

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

DAG_ID = "kwtsms_estimate_gate_send"
if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox import Sandbox

PREFERRED_PORT = 8765
# The lines of the task log worth showing: the plan, one per batch, the result, the gate.
_SHOWN = (
    "Plan:",
    "kwtSMS batch ",
    "Sent ",
    "dry_run=True",
    "Balance",
    "balance",
    "Invalid input",
    "ERROR",
    "Error",
)


def _examples_dir() -> Path:
    here = Path(__file__).resolve().parent.parent / "dags_examples"
    if not here.is_dir():
        raise SystemExit(f"dags_examples/ not found next to the package ({here}); run the demo from a clone.")
    return here


def _start_sandbox() -> Sandbox:
    from airflow_provider_kwtsms.sandbox import Sandbox

    try:
        return Sandbox(port=PREFERRED_PORT, balance=1000).start()  # the gateway's firewall on
    except OSError:
        print(f"Port {PREFERRED_PORT} is taken: using a free port instead.")
        return Sandbox(port=0, balance=1000).start()


def _airflow_env(home: Path, sandbox_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    conn = {"conn_type": "kwtsms", "login": "sandbox_user", "password": "sandbox_pass", "host": sandbox_url}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(_examples_dir()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_KWTSMS_DEFAULT": json.dumps(conn),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def _airflow(*args: str, env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    airflow_bin = Path(sys.executable).parent / "airflow"
    proc = subprocess.run([str(airflow_bin), *args], env=env, capture_output=True, text=True, check=False)
    with log.open("a") as out:
        out.write(f"$ airflow {' '.join(args)}\n{proc.stdout}\n{proc.stderr}\n")
    return proc


def shown_lines(output: str) -> list[str]:
    """The task log lines worth showing (plan, balance, batches, outcome), whole: never cut."""
    shown = []
    for line in output.splitlines():
        if "[airflow.task.operators" in line or "sensors" in line or "[airflow_provider_kwtsms" in line:
            text = line.split("] ", 1)[-1].split(" [airflow.", 1)[0].strip()
            if any(key in text for key in _SHOWN):
                shown.append(text)
    return shown


def message_rows(messages: list[dict[str, Any]]) -> list[list[str]]:
    """One table row per message the sandbox received, with the whole text."""
    return [
        [
            m["msg_id"][:12],
            m["sender"],
            ",".join(m["mobile"]),
            str(m["pages"]),
            str(m["points"]),
            "yes" if m["test"] else "no",
            " ".join(m["message"].split()),  # one line, nothing cut
        ]
        for m in messages
    ]


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*map(str, row)) for row in rows]
    return "\n".join(out)


def main() -> int:
    home = Path(os.environ.get("KWTSMS_DEMO_HOME", "airflow-home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "demo.log"
    log.write_text("")
    sandbox = _start_sandbox()
    try:
        env = _airflow_env(home, sandbox.url)
        print(f"kwtSMS sandbox running at {sandbox.url} (account sandbox_user, 1000 credits)")
        if not (home / "airflow.db").exists():
            print(f"Creating the Airflow database in {home} (first run only, about half a minute)...")
        started = time.monotonic()
        migrate = _airflow("db", "migrate", env=env, log=log)
        if migrate.returncode != 0:
            print(f"airflow db migrate failed; see {log}")
            return 1
        today = date.today().isoformat()
        print(f"Running example (a) '{DAG_ID}' with: airflow dags test {DAG_ID} {today}")
        run = _airflow("dags", "test", DAG_ID, today, env=env, log=log)
        for text in shown_lines(run.stdout + run.stderr):
            print(f"  | {text}")
        state = "success" if "state=success" in run.stdout + run.stderr else "FAILED"
        print(f"DAG run {state} in {time.monotonic() - started:.0f} s (full log: {log})\n")

        messages = sandbox.messages()
        print(f"The sandbox received {len(messages)} message(s):")
        headers = ["msg-id", "sender", "numbers", "pages", "points", "test", "text"]
        print(_table(message_rows(messages), headers))
        account = sandbox.account()
        print(f"\nBalance now: {account['available']} credits. Inbox: {sandbox.url}/")
        if sys.stdin.isatty():
            print("The sandbox stays up so you can open the inbox: press Ctrl-C to stop it.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                print()
        else:
            print("stdin is not a terminal, so the sandbox stops now (run from a terminal to keep it up).")
        return 0 if state == "success" else 1
    finally:
        sandbox.stop()


if __name__ == "__main__":
    raise SystemExit(main())
