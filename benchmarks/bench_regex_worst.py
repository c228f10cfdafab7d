"""Every regular expression that reads untrusted text, on the worst input found for it.

One row per pattern of the audit in docs/message-text.md ("Regular expressions on untrusted
text"), called the way the code calls it, on inputs of 100, 200 and 400 KB (1 KB = 1,024
characters). It prints the time per call at each size and the ratio per doubling: about 2 is
linear, about 1 bounded (the pattern stops after a fixed number of characters), 4 quadratic.

    .venv/bin/python benchmarks/bench_regex_worst.py [--repeats N]

Every figure is the best of --repeats runs (default 5); a call too quick to time alone is
looped. clean_message as a whole is benchmarked by bench_clean_worst.py.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_clean_worst import best_seconds, repeated  # benchmarks/ is the script's folder

from airflow_provider_kwtsms.gateway import answer
from airflow_provider_kwtsms.phone import entries as _phone_input
from airflow_provider_kwtsms.phone import numbering as _numbering
from airflow_provider_kwtsms.sandbox import faults, http_base, rules, smtp
from airflow_provider_kwtsms.send import window as send_window
from airflow_provider_kwtsms.smtp import body as smtp_email
from airflow_provider_kwtsms.text import message

KILOBYTE = 1024
SIZES = (100 * KILOBYTE, 200 * KILOBYTE, 400 * KILOBYTE)


@dataclass(frozen=True)
class Case:
    names: tuple[str, ...]  # as the audit table in docs/message-text.md names them
    call: str  # how the code calls it
    worst: str  # the input, for the table
    make: Callable[[int], str]  # n -> that input: n characters, give or take a few
    run: Callable[[str], object]

    @property
    def cells(self) -> tuple[str, str, str]:
        return ", ".join(self.names), self.call, self.worst


def _numbering_matchers() -> list[Callable[[str], object]]:
    """Every compiled libphonenumber pattern of every calling code, as the code calls it."""
    out: list[Callable[[str], object]] = []
    for cc in sorted(_numbering.known_codes()):
        code = _numbering.calling_code(cc)
        if code is None:
            continue
        out.append(code.national_number)  # prefix.match, then the general fullmatch and the sub
        for region in code.regions:
            out += [m for m in (region.leading, region.general) if m is not None]
            for length in region.general_desc.possible_length:
                entry = region.classifier(length)
                if entry is not None:
                    out += [m for m in (entry[0], entry[2]) if m is not None]
    return out


def _run_all(matchers: list[Callable[[str], object]]) -> Callable[[str], object]:
    def run(text: str) -> None:
        for match in matchers:
            match(text)

    return run


def cases() -> list[Case]:
    return [
        Case(
            ("text.message._TAG_OPENING",),
            "search",
            '"<" * n',
            lambda n: "<" * n,
            message._TAG_OPENING.search,
        ),
        Case(
            ("text.message._ANGLES",),
            "split",
            '"<>" repeated',
            lambda n: repeated("<>", n),
            message._ANGLES.split,
        ),
        Case(
            ("text.message._TAG_BODY",),
            "fullmatch",
            '"a" * n + "!"',
            lambda n: "a" * n + "!",
            message._TAG_BODY.fullmatch,
        ),
        Case(
            ("text.message._BREAK_BODY",),
            "fullmatch",
            '"br" + " " * n + "x"',
            lambda n: "br" + " " * n + "x",
            message._BREAK_BODY.fullmatch,
        ),
        Case(
            ("text.message._ASCII_CONTROLS",),
            "sub",
            '"a\\x01" repeated',
            lambda n: repeated("a\x01", n),
            lambda t: message._ASCII_CONTROLS.sub("", t),
        ),
        Case(
            ("gateway.answer._MSG_ID",), "fullmatch", '"a" * n', lambda n: "a" * n, answer._MSG_ID.fullmatch
        ),
        Case(("gateway.answer._CODE",), "fullmatch", '"A" * n', lambda n: "A" * n, answer._CODE.fullmatch),
        Case(
            ("gateway.answer._NOT_ONE_LINE",),
            "sub",
            '"a\\n" repeated',
            lambda n: repeated("a\n", n),
            lambda t: answer._NOT_ONE_LINE.sub(" ", t),
        ),
        Case(
            ("phone.entries._SEPARATORS",),
            "search",
            '"9" * n',
            lambda n: "9" * n,
            _phone_input._SEPARATORS.search,
        ),
        Case(
            ("phone.entries.SPLIT",),
            "split",
            '"1,a" + " " * n + "b"',
            lambda n: "1,a" + " " * n + "b",
            _phone_input.SPLIT.split,
        ),
        Case(
            ("phone.entries._NOT_KEPT",),
            "sub",
            '"a9" repeated',
            lambda n: repeated("a9", n),
            lambda t: _phone_input._NOT_KEPT.sub("", t),
        ),
        Case(
            ("phone.entries._OTHER_DIGIT",),
            "sub",
            '"\\u0967" (Devanagari 1) * n',
            lambda n: "\u0967" * n,
            lambda t: _phone_input._OTHER_DIGIT.sub(_phone_input.as_latin_digit, t),
        ),
        Case(
            ("phone.entries._FOREIGN_DIGIT",),
            "search",
            '"0123456789" repeated',
            lambda n: repeated("0123456789", n),
            _phone_input._FOREIGN_DIGIT.search,
        ),
        Case(
            ("smtp.body.NOT_ON_A_LINE",),
            "sub",
            '"a\\n" repeated',
            lambda n: repeated("a\n", n),
            lambda t: smtp_email.NOT_ON_A_LINE.sub(" ", t),
        ),
        Case(
            ("smtp.body._NOT_IN_TEXT",),
            "search",
            '"a\\t" repeated',
            lambda n: repeated("a\t", n),
            smtp_email._NOT_IN_TEXT.search,
        ),
        Case(
            ("send.window._HOURS",),
            "fullmatch",
            '"09:00-21:00" + "0" * n',
            lambda n: "09:00-21:00" + "0" * n,
            send_window._HOURS.fullmatch,
        ),
        Case(
            ("phone.numbering._fullmatcher", "phone.numbering.Region", "phone.numbering.CallingCode"),
            "match, fullmatch",
            '"0" * n, every calling code',
            lambda n: "0" * n,
            _run_all(_numbering_matchers()),
        ),
        Case(
            ("sandbox.rules._LONE_SURROGATE",),
            "search",
            '"a" * n',
            lambda n: "a" * n,
            rules._LONE_SURROGATE.search,
        ),
        Case(
            ("sandbox.faults._SECONDS",), "fullmatch", '"1" * n', lambda n: "1" * n, faults._SECONDS.fullmatch
        ),
        Case(
            ("sandbox.http_base._ASCII_DIGITS",),
            "fullmatch",
            '"1" * n + "x"',
            lambda n: "1" * n + "x",
            http_base._ASCII_DIGITS.fullmatch,
        ),
        Case(("sandbox.smtp._LINE",), "match", '" " * n + "x"', lambda n: " " * n + "x", smtp._LINE.match),
        Case(("sandbox.smtp._PATH",), "match", '"<" + "a" * n', lambda n: "<" + "a" * n, smtp._PATH.match),
        Case(
            ("sandbox.smtp._ASCII_DIGITS",),
            "fullmatch",
            '"1" * n + "x"',
            lambda n: "1" * n + "x",
            smtp._ASCII_DIGITS.fullmatch,
        ),
    ]


def per_call(run: Callable[[str], object], text: str, repeats: int) -> float:
    """Seconds per call, the best of ``repeats``; looped until one sample takes 5 ms or more,
    so that a call of microseconds is not lost in the timer's resolution."""
    loops = 1
    while True:
        seconds = best_seconds(_looped(run, loops), text, repeats)
        if seconds >= 0.005 or loops >= 100_000:
            return seconds / loops
        loops *= 10


def _looped(run: Callable[[str], object], loops: int) -> Callable[[str], object]:
    def looped(text: str) -> None:
        for _ in range(loops):
            run(text)

    return looped


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds >= 1e-4 else f"{seconds * 1e6:.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure, the best is kept")
    args = parser.parse_args()
    rows = cases()
    head = ("pattern", "call", "worst input")
    widths = [max(map(len, column)) for column in zip(head, *(row.cells for row in rows), strict=True)]
    sizes = "".join(f"{f'{n // KILOBYTE} KB':>11}" for n in SIZES)
    print("  ".join(map(str.ljust, head, widths)) + sizes + "  per doubling")
    for row in rows:
        times = [per_call(row.run, row.make(size), args.repeats) for size in SIZES]
        ratios = ", ".join(f"{later / earlier:.2f}" for earlier, later in itertools.pairwise(times))
        cells = "  ".join(map(str.ljust, row.cells, widths))
        print(cells + "".join(f"{_time(t):>11}" for t in times) + "  " + ratios, flush=True)


if __name__ == "__main__":
    main()
