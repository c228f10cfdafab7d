"""docs/architecture.md stays the picture of the code: its parts, its arrows (read from the imports,
as tests/test_layering.py reads them), its layers and the path of one send."""

from __future__ import annotations

import ast
import re

from airflow_support import REPO
from test_layering import ADAPTER_PACKAGES, AIRFLOW_FACING, PACKAGE, all_modules, package_imports

PAGE = REPO / "docs" / "architecture.md"
PREFIX = "airflow_provider_kwtsms."
LEFT_OUT = {"_lazy", "__init__"}  # the lazy-face helper every subpackage uses; the version


def _part(module: str) -> str:
    return module.removeprefix(PREFIX).split(".")[0] if module.startswith(PREFIX) else "__init__"


def parts_in_code() -> set[str]:
    return {_part(name) for name in all_modules()} - LEFT_OUT


def arrows_in_code() -> dict[str, set[str]]:
    """Each part -> every other part one of its modules imports (anywhere: functions, TYPE_CHECKING)."""
    modules = all_modules()
    arrows: dict[str, set[str]] = {part: set() for part in parts_in_code()}
    for name, tree in modules.items():
        here = _part(name)
        if here in LEFT_OUT:
            continue
        for target in package_imports(name, tree, set(modules)):
            there = _part(target)
            if there != here and there not in LEFT_OUT:
                arrows[here].add(there)
    return arrows


def _section(heading: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert heading in text, f"docs/architecture.md lacks {heading!r}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def table_of_parts() -> dict[str, set[str]]:
    rows = [line for line in _section("## The parts").splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        table[cells[0].strip("`")] = set(re.findall(r"`([a-z_]+)`", cells[2]))
    return table


def picture_rows() -> tuple[list[set[str]], int]:
    """The picture's rows (the parts named on each, top first) and the index of the first row
    below the 'no Airflow' line."""
    block = _section("## The picture").split("```text\n", 1)[1].split("```", 1)[0]
    known = parts_in_code()
    rows, line_at = [], -1
    for line in block.splitlines():
        if "no Airflow below" in line:
            line_at = len(rows)
            continue
        rows.append({word for word in re.findall(r"[a-z_]+", line) if word in known})
    assert line_at > 0, "the picture lost its 'no Airflow below this line' line"
    return rows, line_at


def arrows_going_up() -> set[tuple[str, str]]:
    section = _section("### Arrows that go up")
    return set(re.findall(r"^- `([a-z_]+)` → `([a-z_]+)`", section, flags=re.M))


def test_the_table_names_every_part_and_only_parts_that_exist():
    table, code = set(table_of_parts()), parts_in_code()
    assert len(code) > 15  # the walk found the package
    assert code - table == set(), "add these parts to the table in docs/architecture.md"
    assert table - code == set(), "docs/architecture.md's table names parts that are gone"


def test_every_arrow_of_the_table_is_an_import_and_every_import_is_drawn():
    table, code = table_of_parts(), arrows_in_code()
    drawn_not_made = {part: sorted(table[part] - code.get(part, set())) for part in table}
    made_not_drawn = {part: sorted(code[part] - table.get(part, set())) for part in code}
    assert {p: t for p, t in drawn_not_made.items() if t} == {}, "no import makes these arrows: remove them"
    assert {p: t for p, t in made_not_drawn.items() if t} == {}, "imports the table does not draw: add them"


def test_the_picture_has_every_part_once_and_its_arrows_go_down():
    rows, _ = picture_rows()
    placed = [part for row in rows for part in row]
    assert sorted(placed) == sorted(parts_in_code()), "each part once in the picture"
    level = {part: i for i, row in enumerate(rows) for part in row}
    up = {(a, b) for a, targets in arrows_in_code().items() for b in targets if level[b] <= level[a]}
    assert up == arrows_going_up(), "the arrows that go up (or sideways) are not the ones the page lists"


def test_the_picture_keeps_airflow_above_the_line():
    rows, line_at = picture_rows()
    above = {part for row in rows[:line_at] for part in row}
    assert above == (ADAPTER_PACKAGES | AIRFLOW_FACING) - LEFT_OUT


def _top_level_names(path) -> dict[str, set[str]]:
    """A module's top-level names, each with the names defined in it (a class's methods)."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.Assign):
            names.update({t.id: set() for t in node.targets if isinstance(t, ast.Name)})
    return names


def test_the_path_of_one_send_names_what_exists():
    section = _section("## The path of one send")
    dotted = set(re.findall(r"`([a-z_]+\.[a-z_]+(?:\.[A-Za-z_]+){0,2})`", section))
    assert len(dotted) > 10
    missing = []
    for name in sorted(dotted):
        part, module, *rest = name.split(".")
        path = PACKAGE / part / f"{module}.py"
        if not path.exists():
            missing.append(name)
            continue
        names = _top_level_names(path)
        if rest and (rest[0] not in names or (len(rest) == 2 and rest[1] not in names[rest[0]])):
            missing.append(name)
    assert missing == [], "docs/architecture.md's path of a send names what the code no longer has"


def test_the_page_is_in_the_site_navigation():
    assert "architecture.md" in (REPO / "mkdocs.yml").read_text(encoding="utf-8")


def test_the_sandbox_has_no_import_cycle():
    # http_handler and inbox type against sandbox.view.SandboxView, not server.Sandbox (whose
    # module imports http_handler): the cycle http_handler -> inbox -> server -> http_handler is gone.
    from test_layering import cycles

    modules = {name: tree for name, tree in all_modules().items() if name.startswith(PREFIX + "sandbox.")}
    graph = {name: package_imports(name, tree, set(modules)) for name, tree in modules.items()}
    assert len(graph) > 10
    assert cycles(graph) == []
