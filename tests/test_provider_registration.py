"""Airflow finds the provider: schema-valid provider info, importable classes, the connection form."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

import airflow
import jsonschema
import pytest

import airflow_provider_kwtsms
from airflow_provider_kwtsms.get_provider_info import CONN_FIELDS, get_provider_info
from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS, HAS_CONN_FIELDS

pytestmark = pytest.mark.compat

SCHEMAS = Path(airflow.__file__).parent


@pytest.mark.parametrize("schema", ["provider_info.schema.json", "provider.yaml.schema.json"])
def test_provider_info_matches_airflows_schemas(schema):
    info = get_provider_info()
    if schema == "provider.yaml.schema.json":  # the full provider.yaml needs fields a wheel's info omits
        info = {**info, "state": "ready", "source-date-epoch": 0}
    jsonschema.validate(info, json.loads((SCHEMAS / schema).read_text()))


def _import(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def test_every_declared_module_and_class_imports():
    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                import_module(module)
    for notifier in info["notifications"]:
        _import(notifier)
    [conn] = info["connection-types"]
    hook = _import(conn["hook-class-name"])
    assert (hook.conn_type, hook.default_conn_name, hook.conn_name_attr, hook.hook_name) == (
        "kwtsms",
        "kwtsms_default",
        "kwtsms_conn_id",
        "kwtSMS",
    )


def test_the_connection_form_the_ui_renders():
    """What the React UI of every 3.x release renders the form from: GET /ui/connections/hook_meta."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    if not AIRFLOW_V_3_1_PLUS:
        # 3.0 builds every provider's form with wtforms and drops it where wtforms is missing
        # (apache/airflow#55841): the FAB provider brings it; the compatibility lane installs it.
        pytest.importorskip(
            "wtforms", reason="Airflow 3.0 renders provider connection forms only with wtforms"
        )
    [meta] = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "kwtsms"]
    form = meta.model_dump()
    assert meta.hook_class_name == "airflow_provider_kwtsms.hooks.kwtsms.KwtSMSHook"
    fields = form["standard_fields"]
    assert (fields["login"]["title"], fields["password"]["title"], fields["host"]["title"]) == (
        "API username",
        "API password",
        "API base URL",
    )
    assert fields["host"]["placeholder"] == "https://www.kwtsms.com"
    assert fields["url_schema"]["hidden"] and fields["port"]["hidden"]
    extra = form["extra_fields"]
    assert set(extra) == set(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        assert extra[name]["schema"]["title"] == spec["label"]
        assert extra[name]["description"] == spec["description"]
    assert extra["test_mode"]["schema"]["type"] == ["boolean", "null"]


@pytest.mark.skipif(
    not HAS_CONN_FIELDS, reason="conn-fields (the typed form from the provider info) arrived in Airflow 3.2"
)
def test_the_connection_form_airflow_builds():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["kwtsms"]
    assert hook.hook_class_name == "airflow_provider_kwtsms.hooks.kwtsms.KwtSMSHook"
    assert hook.connection_testable is True
    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    for name in ("sender", "test_mode", "default_country", "timeout", "rate"):
        assert f"extra__kwtsms__{name}" in widgets
    assert widgets["extra__kwtsms__test_mode"].field["schema"]["type"] == ["boolean", "null"]
    behaviour = manager.field_behaviours["kwtsms"]
    assert behaviour["relabeling"] == {
        "login": "API username",
        "password": "API password",
        "host": "API base URL",
    }
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra"}
    assert behaviour["placeholders"]["host"] == "https://www.kwtsms.com"


def test_the_hook_fallbacks_for_older_airflow_agree_with_the_provider_info():
    from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook

    behaviour = KwtSMSHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "API password"
    assert "extra" in behaviour["hidden_fields"]


@pytest.mark.airflow
def test_airflow_providers_list_shows_the_provider(airflow):
    result = airflow.run("providers", "list", "--output", "json").check()
    providers = {p["package_name"]: p for p in json.loads(result.stdout[result.stdout.index("[{") :])}
    assert "airflow-provider-kwtsms" in providers
    assert providers["airflow-provider-kwtsms"]["version"] == airflow_provider_kwtsms.__version__
