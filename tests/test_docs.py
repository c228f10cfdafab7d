"""The README stays a way in, and what it shows is what the tests run.

The docs site itself is checked by ``make docs`` (``mkdocs build --strict``: broken links,
anchors and API references fail); these checks need no extra packages.
"""

from __future__ import annotations

import re

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
    from airflow_provider_kwtsms.smart_encoding import _FULLWIDTH, LOOKALIKES

    page = (REPO / "docs" / "message-text.md").read_text(encoding="utf-8")
    missing = [f"U+{ord(c):04X}" for c in LOOKALIKES if c not in _FULLWIDTH and f"U+{ord(c):04X}" not in page]
    assert not missing, f"docs/message-text.md lacks {missing}"
