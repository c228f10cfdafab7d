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
ADAPTER_PACKAGES = {"hooks", "operators", "sensors", "triggers", "notifications", "plugins"}
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


# -- the layout (issue 22): subpackages, no cycle, no reading of another module's private names --
def all_modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("airflow_provider_kwtsms", *parts)).removesuffix(".__init__")
        modules[name] = ast.parse(path.read_text(encoding="utf-8"))
    return modules


def package_imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Every module of the package that ``name`` imports, anywhere in it (in a function, or only
    for type checking, too): each is an edge of the design, wherever Python runs it."""
    found = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "airflow_provider_kwtsms":
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on, stack, found = set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    part = []
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        part.append(top)
                        if top == node:
                            break
                    if len(part) > 1:
                        found.append(sorted(part))
    return found


def test_no_import_cycle():
    modules = all_modules()
    # Every edge as a reader sees it: a module importing its own package's face counts too.
    graph = {name: package_imports(name, tree, set(modules)) for name, tree in modules.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_reads_another_modules_private_names():
    modules = all_modules()
    offenders = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("airflow_provider_kwtsms")
            ):
                offenders += [
                    f"{name}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__") and a.name != "_lazy"
                ]
        aliases = module_aliases(tree, set(modules))
        offenders += [
            f"{name}: {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ]
    assert offenders == []


def module_aliases(tree: ast.Module, known: set[str]) -> set[str]:
    """The names a module binds to other modules of the package (``from pkg.phone import
    numbering as nb``, ``import pkg.x as y``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in known}
        elif isinstance(node, ast.Import):
            found |= {a.asname for a in node.names if a.asname and a.name in known}
    return found


def test_the_top_level_keeps_at_most_eight_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
