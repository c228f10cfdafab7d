"""Importing our Airflow classes in a DAG file must not import requests or phonenumbers.

A structural fact checked in one fresh interpreter (timings belong in benchmarks/, not in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow_support import REPO

from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS

pytestmark = pytest.mark.compat

HEAVY = ("requests", "phonenumbers", "urllib3")
DAG_FILE_IMPORTS = {
    "hook": "from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook",
    "sensor": "from airflow_provider_kwtsms.sensors.balance import BalanceSensor",
    "notifier": "from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier",
    "operator": "from airflow_provider_kwtsms.operators.sms import SendSMSOperator",
    "provider info": "from airflow_provider_kwtsms.get_provider_info import get_provider_info",
    # The control: a statement that does import requests must be seen doing it.
    "control": "import requests",
}

# airflow.sdk and its base classes come first: what they pull in by themselves is not our cost.
PROBE = """
import json, sys
import airflow.sdk
from airflow.sdk import BaseNotifier, BaseOperator, BaseSensorOperator
from {base_hook_module} import BaseHook
heavy = {heavy!r}
found = {{}}
for name, statement in {imports!r}.items():
    before = set(sys.modules)
    exec(statement)
    new = set(sys.modules) - before
    found[name] = sorted(m for m in new if m.split(".")[0] in heavy)
print(json.dumps(found))
"""


def test_importing_our_classes_pulls_in_no_heavy_module():
    base_hook_module = "airflow.sdk" if AIRFLOW_V_3_1_PLUS else "airflow.hooks.base"
    code = PROBE.format(heavy=HEAVY, imports=DAG_FILE_IMPORTS, base_hook_module=base_hook_module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert "requests" in found.pop("control")  # the probe does see a heavy import
    assert found == {name: [] for name in DAG_FILE_IMPORTS if name != "control"}
