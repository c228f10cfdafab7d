"""docs/promises.md maps every behavioural promise of the docs to the tests that keep it.

Checks, by reading the test files with ``ast`` (no collection, no import: milliseconds): every test
the page names exists, so a row naming a renamed or removed test fails; every row of a promise
names at least one test; and every page of docs/ (and the README) has its section or is listed
among the pages without a behavioural promise.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "promises.md"
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+(?:::\w+)?)`")
UNTESTED = "## Promises with no test on the user's path yet"
WITHOUT = "## Pages without a behavioural promise of their own"


def sections() -> dict[str, str]:
    """The page's ``## `` sections by heading."""
    parts = re.split(r"^## ", PAGE.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return {"## " + part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in parts}


def promise_rows() -> list[str]:
    rows = []
    for heading, text in sections().items():
        if heading in (UNTESTED, WITHOUT):
            continue
        lines = text.splitlines()
        rows += [line for line in lines if line.startswith("| ") and not line.startswith("| promise")]
    return rows


@cache
def defined_in(path: str) -> frozenset[str]:
    """``name`` of every test function and ``Class::name`` of every test method in ``path``."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return frozenset(names)


def test_every_test_the_page_names_exists():
    named = NODE_ID.findall(PAGE.read_text(encoding="utf-8"))
    assert len(named) > 100
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (ROOT / path).is_file() or name not in defined_in(path)
    ]
    assert missing == [], f"docs/promises.md names tests that do not exist: {missing}"


def test_every_promise_names_a_test():
    rows = promise_rows()
    assert len(rows) > 100
    untested = [row[:100] for row in rows if not row.startswith("|---") and not NODE_ID.search(row)]
    assert untested == [], f"rows of docs/promises.md without a test: {untested}"


def test_every_page_of_the_docs_has_its_section():
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"promises.md", "index.md"}
    headings = set(sections())
    covered = {h.removeprefix("## ") for h in headings}
    without = re.findall(r"^\| \[(\w[\w-]*\.md)\]", sections()[WITHOUT], flags=re.MULTILINE)
    assert "README.md and index.md" in covered
    assert pages - covered - set(without) == set(), "pages of docs/ missing from docs/promises.md"
    assert (covered | set(without)) - pages - {"README.md and index.md", UNTESTED[3:], WITHOUT[3:]} == set()
