"""The shape the project promises: an Airflow-free core under thin Airflow adapters.

The core (phone numbers, message text, the clients, the ledger, the sandbox) must not import
Airflow, and mypy checks it strictly: both read from the source and pyproject.toml, so a new
module that breaks either rule fails here rather than in review.
"""

from __future__ import annotations

import ast
import tomllib
from fnmatch import fnmatch

from airflow_support import REPO

PACKAGE = REPO / "airflow_provider_kwtsms"
# The adapters and the modules that exist to talk to Airflow.
ADAPTER_PACKAGES = {"hooks", "operators", "sensors", "triggers", "notifications"}
AIRFLOW_FACING = {"version_compat", "get_provider_info", "demo", "__init__"}


def core_modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] in ADAPTER_PACKAGES or (len(parts) == 1 and parts[0] in AIRFLOW_FACING):
            continue
        name = ".".join(("airflow_provider_kwtsms", *parts)).removesuffix(".__init__")
        modules[name] = ast.parse(path.read_text(encoding="utf-8"))
    return modules


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_no_airflow():
    offenders = {
        name: sorted(m for m in imported(tree) if m == "airflow" or m.startswith("airflow."))
        for name, tree in core_modules().items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_every_core_module_is_type_checked_strictly():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    strict = [
        pattern
        for override in config["tool"]["mypy"]["overrides"]
        if override.get("strict")
        for pattern in override["module"]
    ]
    modules = core_modules()
    assert len(modules) > 30  # the walk found the package
    # As mypy reads them: "pkg.*" covers pkg itself and everything under it.
    loose = [name for name in modules if not any(fnmatch(name, p) or f"{name}.*" == p for p in strict)]
    assert loose == [], "add these to the strict list in pyproject.toml's [tool.mypy.overrides]"
