"""The sample output the docs show, checked against the output of a real run.

A sample is the fenced block right after an HTML comment naming it (invisible on GitHub and in
the built site)::

    <!-- sample: quickstart-log -->
    ```text
    2026-12-06T18:53:59.300737Z [info     ] kwtSMS balance: 1000 of 1000 credits (minimum 10) [...]
    ```

The test that runs the real thing calls :func:`assert_sample_in` with what the run printed. What
changes from one run to the next is normalised on both sides: times, msg-ids, and the ``loc=``
field Airflow adds to each console line (the docs leave it out). tests/test_docs.py checks that
every output block of the pages in ``PAGES`` carries a name, and that some test checks each name.
A plain module, as airflow_support is.
"""

from __future__ import annotations

import re

from airflow_support import REPO

PAGES = ("README.md", "docs/operator.md", "docs/client.md")  # every output block there is a sample
SAMPLE = re.compile(r"^<!-- sample: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?)^```$", re.M | re.S)
_CONSOLE = re.compile(r"\S+ \[[a-z]+ *\] (.*) \[[\w.]+\]")
_FENCE = re.compile(r"^```([a-z]*)\n", re.M)
_VARIABLE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"), "<time>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<msg-id>"),
    (re.compile(r" loc=\S+$"), ""),
]


def samples(page: str) -> dict[str, str]:
    """``name -> text`` of every named sample on ``page`` (a path from the repository's root)."""
    return dict(SAMPLE.findall((REPO / page).read_text(encoding="utf-8")))


def sample_lines(page: str, name: str) -> list[str]:
    text = samples(page).get(name)
    assert text is not None, f"{page} has no sample named {name!r} (<!-- sample: {name} --> before a block)"
    return [normalised(line) for line in text.splitlines() if line.strip()]


def normalised(line: str) -> str:
    line = line.rstrip()
    for pattern, replacement in _VARIABLE:
        line = pattern.sub(replacement, line)
    return line


def message_of(line: str) -> str:
    """The message of a line in Airflow 3.3's console form (``<time> [level] MESSAGE [logger]``)."""
    match = _CONSOLE.fullmatch(line)
    assert match, f"not a line as Airflow 3.3 prints it: {line!r}"
    return match.group(1)


def assert_sample_in(output: str, page: str, name: str, *, whole_lines: bool = True) -> None:
    """Each line of the sample is a line of ``output``, in the sample's order (other lines may
    come between), once times, msg-ids and ``loc=`` are normalised. ``whole_lines=False``: only
    each line's message, inside a line of ``output``, in any order (Airflow 3.0 to 3.2 print
    another form, and interleave the task's and the provider's loggers differently)."""
    lines = [normalised(line) for line in output.splitlines()]
    at = 0
    for wanted in sample_lines(page, name):
        at = at if whole_lines else 0
        try:
            if whole_lines:
                at = lines.index(wanted, at) + 1
            else:
                message = message_of(wanted)
                at = next(i for i in range(at, len(lines)) if message in lines[i]) + 1
        except (ValueError, StopIteration):
            near = [line for line in lines if wanted[:60].split("]")[-1][:30] in line][:3]
            raise AssertionError(
                f"{page}'s sample {name!r} shows a line the real run did not print (in this order):\n"
                f"  {wanted}\nlines of the run that look like it:\n  " + "\n  ".join(near or ["(none)"])
            ) from None


def unnamed_output_blocks(page: str) -> list[int]:
    """Line numbers of the output blocks (```text or a bare ```) of ``page`` that are not named
    samples: a block nobody checks."""
    text = (REPO / page).read_text(encoding="utf-8")
    named = {m.start(2) for m in SAMPLE.finditer(text)}
    starts = []
    inside = False
    for match in _FENCE.finditer(text):
        if inside:
            inside = False
            continue
        inside = True
        if match.group(1) in ("", "text") and match.end() not in named:
            starts.append(text.count("\n", 0, match.start()) + 1)
    return starts
