"""The README stays a way in, and what it shows is what the tests run; the regex audit in
docs/message-text.md names every regular expression of the package.

The docs site itself is checked by ``make docs`` (``mkdocs build --strict``: broken links,
anchors and API references fail); these checks need no extra packages.
"""

from __future__ import annotations

import ast
import os
import re

import pytest
from airflow_support import REPO

README = REPO / "README.md"
QUICKSTART = REPO / "dags_examples" / "kwtsms_quickstart.py"


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.S | re.M)


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move reference material to docs/"


def test_readme_dag_is_the_example_the_tests_run():
    """tests/test_examples.py::test_quickstart runs the file; the README must show it unchanged."""
    blocks = _python_blocks(README.read_text(encoding="utf-8"))
    assert QUICKSTART.read_text(encoding="utf-8") in blocks, (
        "The README's DAG differs from dags_examples/kwtsms_quickstart.py: copy the file into the README."
    )


def test_readme_links_to_existing_files():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links to no docs page"
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_smart_encoding_table_in_the_docs_lists_every_lookalike():
    from airflow_provider_kwtsms.text.smart_encoding import _FULLWIDTH, LOOKALIKES

    page = (REPO / "docs" / "message-text.md").read_text(encoding="utf-8")
    missing = [f"U+{ord(c):04X}" for c in LOOKALIKES if c not in _FULLWIDTH and f"U+{ord(c):04X}" not in page]
    assert not missing, f"docs/message-text.md lacks {missing}"


# --- the audit of regular expressions on untrusted text (docs/message-text.md) -------------------

AUDIT_HEADING = "## Regular expressions on untrusted text (audit)"
PACKAGE = REPO / "airflow_provider_kwtsms"
_RE_FUNCTIONS = {"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer"}


class _RegexFinder(ast.NodeVisitor):
    """Each ``re.<function>(...)`` call of a module, named as the audit names it: ``module.NAME``
    when its value is bound to a module-level name, else ``module.Outer`` (the top-level function
    or class it is in)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.outer: str | None = None
        self.bound_to: str | None = None
        self.found: set[str] = set()
        self.hidden: list[str] = []  # imports that would let a pattern escape the search

    def visit_Import(self, node: ast.Import) -> None:
        self.hidden += [f"import re as {a.asname}" for a in node.names if a.name == "re" and a.asname]
        self.hidden += [f"import {a.name}" for a in node.names if a.name == "regex"]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module in ("re", "regex"):
            self.hidden.append(f"from {node.module} import ...")

    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        if self.outer is None:
            self.outer = node.name
            self.generic_visit(node)
            self.outer = None
        else:
            self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if self.outer is None and len(targets) == 1 and isinstance(targets[0], ast.Name):
            self.bound_to = targets[0].id
        self.generic_visit(node)
        self.bound_to = None

    visit_AnnAssign = visit_Assign

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "re"
            and func.attr in _RE_FUNCTIONS
        ):
            self.found.add(f"{self.module}.{self.outer or self.bound_to}")
        self.generic_visit(node)


def _regexes_in_code() -> set[str]:
    found: set[str] = set()
    hidden: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        finder = _RegexFinder(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        found |= finder.found
        hidden += [f"{path.name}: {what}" for what in finder.hidden]
    assert not hidden, f"the audit's search cannot see these imports; write `import re`: {hidden}"
    return found


def _regexes_in_audit() -> set[str]:
    page = (REPO / "docs" / "message-text.md").read_text(encoding="utf-8")
    assert AUDIT_HEADING in page, f"docs/message-text.md lacks the section {AUDIT_HEADING!r}"
    section = page.split(AUDIT_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([^`]+)`", cell)}


def test_the_regex_audit_names_every_regular_expression_in_the_package():
    in_code, in_audit = _regexes_in_code(), _regexes_in_audit()
    assert in_code - in_audit == set(), "add these to the audit in docs/message-text.md (and its benchmark)"
    assert in_audit - in_code == set(), "the audit in docs/message-text.md names patterns that are gone"


def test_the_regex_benchmark_has_a_worst_input_for_every_pattern_of_the_audit():
    bench = (REPO / "benchmarks" / "bench_regex_worst.py").read_text(encoding="utf-8")
    missing = sorted(name for name in _regexes_in_audit() if f'"{name}"' not in bench)
    assert not missing, f"benchmarks/bench_regex_worst.py has no case for {missing}"


def test_every_libphonenumber_pattern_reads_a_bounded_number_of_characters():
    # The audit's reason why the metadata patterns cannot be slow on a long input: with match or
    # fullmatch, a pattern that consumes at most a few characters does bounded work.
    import re._parser as sre

    from airflow_provider_kwtsms.phone import numbering as nb

    widest = {}
    for cc in nb.known_codes():
        code = nb.calling_code(cc)
        for region in code.regions if code is not None else []:
            meta = region.meta
            descs = [meta.general_desc] + [getattr(meta, field) for field, _ in nb.TYPE_FIELDS]
            patterns = [d.national_number_pattern for d in descs if d is not None]
            patterns += [meta.leading_digits, meta.national_prefix_for_parsing]
            for pattern in filter(None, patterns):
                widest[pattern] = sre.parse(pattern).getwidth()[1]
    assert len(widest) > 1000
    unbounded = {p: w for p, w in widest.items() if w > nb.MAX_NSN}
    assert not unbounded, f"wider than {nb.MAX_NSN} characters (docs/message-text.md's audit): {unbounded}"


# --- the API reference: one docstring style, parameters as a table ------------------------------

# The public constructors whose parameters the reference must list, each in one table.
DOCUMENTED_CONSTRUCTORS = {
    "operators/sms.py": "SendSMSOperator",
    "hooks/kwtsms.py": "KwtSMSHook",
    "sensors/balance.py": "BalanceSensor",
    "triggers/balance.py": "BalanceTrigger",
    "notifications/kwtsms.py": "KwtSMSNotifier",
    "gateway/client.py": "KwtSMSClient",
    "smtp/sender.py": "KwtSMSSmtpSender",
}


def _mkdocstrings_options() -> dict[str, str]:
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    return dict(re.findall(r"^\s+(docstring_style|docstring_section_style):\s*(\S+)", text, flags=re.M))


def test_mkdocstrings_reads_the_docstrings_in_the_style_they_are_written():
    # Sphinx style (`:param x:`) read as Google style renders as run-on prose (issue 22).
    assert _mkdocstrings_options() == {"docstring_style": "sphinx", "docstring_section_style": "table"}
    section = re.compile(r"^\s+(Args|Arguments|Parameters|Returns|Raises):\s*$", re.M)
    google = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if section.search(path.read_text(encoding="utf-8"))
    ]
    assert google == [], "these docstrings use Google-style sections: write `:param name:` lines"


def _class_and_init(path: str, name: str) -> tuple[str, list[str]]:
    tree = ast.parse((PACKAGE / path).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    params = [a.arg for a in init.args.posonlyargs + init.args.args + init.args.kwonlyargs][1:]  # no self
    return ast.get_docstring(cls) or "", params


def test_every_parameter_of_a_public_constructor_has_its_line_in_the_docstring():
    problems = {}
    for path, name in DOCUMENTED_CONSTRUCTORS.items():
        doc, params = _class_and_init(path, name)
        documented = re.findall(r"^:param (\w+):", doc, flags=re.M)
        # The parameters end the docstring: a line after them, not indented, would be read as
        # the last parameter's meaning (it was: the sensor's "Other arguments ..." line).
        after = doc.split("\n:param ", 1)[-1].splitlines()
        glued = [line for line in after[1:] if line and not line.startswith((" ", ":param "))]
        missing = [p for p in params if p not in documented]
        unknown = [p for p in documented if p not in params]
        twice = sorted({p for p in documented if documented.count(p) > 1})
        if missing or unknown or twice or glued:
            problems[name] = {"missing": missing, "not a parameter": unknown, "twice": twice, "glued": glued}
    assert problems == {}


def test_the_built_reference_shows_the_operators_parameters_in_a_table(tmp_path):
    """Build the site as `make docs` does and read the operator's page: the strict build passed
    while every parameter rendered as run-on prose, so the HTML itself is what is checked."""
    import subprocess
    import sys
    from html.parser import HTMLParser

    pytest.importorskip("mkdocstrings", reason="the docs extra (make docs installs it)")
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    class Tables(HTMLParser):
        """The first column's text of every table row (the parameter names)."""

        def __init__(self) -> None:
            super().__init__()
            self.tables: list[list[str]] = []
            self.cell: int | None = None

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.cell = -1
            elif tag == "td" and self.cell is not None:
                self.cell += 1
                if self.cell == 0:
                    self.tables[-1].append("")

        def handle_data(self, data: str) -> None:
            if self.cell == 0 and self.tables:
                self.tables[-1][-1] += data.strip()

    page = Tables()
    page.feed((site / "reference" / "operators" / "index.html").read_text(encoding="utf-8"))
    _, params = _class_and_init("operators/sms.py", "SendSMSOperator")
    expected = [p for p in params if p != "kwargs"]
    assert expected in page.tables, f"no table of {expected} on the operator's page: {page.tables}"
    assert ":param" not in (site / "reference" / "operators" / "index.html").read_text(encoding="utf-8")


def test_the_stop_policy_table_has_one_home():
    header = re.compile(r"batch outcome\s*\|?\s*this batch\s*\|?\s*the other batches")
    homes = [
        str(path.relative_to(REPO))
        for path in sorted([*PACKAGE.rglob("*.py"), *(REPO / "docs").rglob("*.md"), REPO / "README.md"])
        if header.search(path.read_text(encoding="utf-8"))
    ]
    assert homes == ["docs/client.md"], "link to docs/client.md#when-a-batch-fails instead of copying it"
