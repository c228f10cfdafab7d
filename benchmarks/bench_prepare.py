"""Recipient preparation: our prepare_recipients vs the seed client's validate_phone_input loop.

Generates N mixed-format numbers deterministically (weighted towards Kuwait and the Gulf, as real
lists are: +, 00, spaces, dashes, dots, brackets, Arabic-Indic and Persian digits, trunk zeros,
local numbers, landlines, random digits, garbage, duplicates), times both over the same inputs in
one process, and checks our verdicts against phonenumbers (parse + is_valid_number + number_type)
on a sample.

    .venv/bin/python benchmarks/bench_prepare.py [N] [REPEATS]     (--help for the details)

``run(n, repeats)`` returns the figures as a dict for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_kwtsms.phone import prepare_recipients, validate_phone

SEED = 20240611
# (region, weight): Kuwait first, then the Gulf and the countries Kuwaiti lists reach most.
WEIGHTS = [
    ("KW", 40),
    ("SA", 10),
    ("AE", 7),
    ("QA", 3),
    ("BH", 3),
    ("OM", 3),
    ("EG", 6),
    ("IN", 6),
    ("PK", 2),
    ("PH", 2),
    ("BD", 1),
    ("LK", 1),
    ("JO", 1),
    ("LB", 1),
    ("GB", 2),
    ("US", 2),
    ("CA", 1),
    ("FR", 1),
    ("DE", 1),
    ("RU", 1),
    ("OTHER", 5),
]
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _group(digits: str, rng: random.Random, sep: str) -> str:
    out, i = [], 0
    while i < len(digits):
        step = rng.choice((2, 3, 4))
        out.append(digits[i : i + step])
        i += step
    return sep.join(out)


def _format(cc: str, nsn: str, rng: random.Random) -> str:
    """One way people write the number +cc nsn."""
    style = rng.random()
    if style < 0.25:
        return cc + nsn
    if style < 0.40:
        return "+" + cc + nsn
    if style < 0.50:
        return "00" + cc + nsn
    if style < 0.60:
        return f"+{cc} {_group(nsn, rng, ' ')}"
    if style < 0.67:
        return f"+{cc}-{_group(nsn, rng, '-')}"
    if style < 0.72:
        return f"({cc}) {_group(nsn, rng, '.')}"
    if style < 0.77:
        return f"  00{cc} {nsn}\t"
    if style < 0.84:
        return ("+" + cc + nsn).translate(ARABIC)
    if style < 0.88:
        return (cc + " " + nsn).translate(PERSIAN)
    if style < 0.92:
        return f"{cc}0{nsn}"  # trunk 0 left after the country code
    return f"(+{cc}) {_group(nsn, rng, ' ')}"


def _national_examples(pn, region: str) -> dict[str, str]:
    out = {}
    for kind in ("MOBILE", "FIXED_LINE", "TOLL_FREE"):
        example = pn.example_number_for_type(region, getattr(pn.PhoneNumberType, kind))
        if example is not None:
            out[kind] = pn.national_significant_number(example)
    return out


def generate(n: int, seed: int = SEED) -> list[str]:
    """N raw inputs, the same for the same (n, seed)."""
    import phonenumbers as pn

    rng = random.Random(seed)
    regions = sorted(pn.SUPPORTED_REGIONS)
    names = [r for r, _ in WEIGHTS]
    weights = [w for _, w in WEIGHTS]
    examples: dict[str, dict[str, str]] = {}
    made: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if made and roll < 0.08:  # the same person twice, possibly written differently
            made.append(rng.choice(made) if rng.random() < 0.5 else " " + rng.choice(made) + " ")
            continue
        if roll < 0.10:
            made.append(
                rng.choice(
                    (
                        "info@example.com",
                        "n/a",
                        "-",
                        "",
                        "call me",
                        "12345",
                        "123",
                        "9876543210987654",
                        "+",
                        "tel:",
                        "٠٠",
                    )
                )
            )
            continue
        region = rng.choices(names, weights)[0]
        if region == "OTHER":
            region = rng.choice(regions)
        cc = str(pn.country_code_for_region(region))
        if region not in examples:
            examples[region] = _national_examples(pn, region)
        ex = examples[region]
        kind_roll = rng.random()
        if region == "KW" and kind_roll < 0.75:
            nsn = rng.choice("569") + "".join(rng.choice("0123456789") for _ in range(7))
        elif kind_roll < 0.78 and "MOBILE" in ex:
            base = ex["MOBILE"]
            keep = max(2, len(base) - 5)
            nsn = base[:keep] + "".join(rng.choice("0123456789") for _ in range(len(base) - keep))
        elif kind_roll < 0.88 and "FIXED_LINE" in ex:
            nsn = ex["FIXED_LINE"]
        elif kind_roll < 0.90 and "TOLL_FREE" in ex:
            nsn = ex["TOLL_FREE"]
        else:  # random digits after a real country code: any length from 4 to 11
            nsn = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 11)))
        if region == "KW" and rng.random() < 0.15:
            made.append(nsn if rng.random() < 0.7 else _group(nsn, rng, " "))  # local, no country code
            continue
        made.append(_format(cc, nsn, rng))
    return made


def _time(fn) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of one call. The machine is shared: CPU time is less disturbed by
    other processes, though they still slow ours and the seed's alike through shared caches."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def agreement(inputs: list[str], default_country: str | None = None) -> dict:
    """Our verdict vs phonenumbers' on the same digits (the number we would send)."""
    import phonenumbers as pn

    accept_types = {pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE_OR_MOBILE}
    counts = {
        "inputs": len(inputs),
        "pn_valid_mobile": 0,
        "pn_fixed_line": 0,
        "pn_impossible": 0,
        "pn_unknown_code_or_unparsable": 0,
        "pn_other": 0,
        "missed_mobile": 0,
        "accepted_fixed_line": 0,
        "accepted_impossible": 0,
        "accepted_unparsable": 0,
        "other_accepted": 0,
        "raw_parse_checked": 0,
        "raw_parse_mismatch": 0,
        "raw_parse_trunk_zero": 0,
    }
    mismatches: list[str] = []
    for raw in inputs:
        check = validate_phone(raw, default_country)
        try:
            num = pn.parse("+" + check.number, None) if check.number else None
        except pn.NumberParseException:
            num = None
        if num is None:
            counts["pn_unknown_code_or_unparsable"] += 1
            if check.valid:
                counts["accepted_unparsable"] += 1
                mismatches.append(raw)
            continue
        if not pn.is_possible_number(num) and not pn.is_valid_number(num):
            counts["pn_impossible"] += 1
            if check.valid:
                counts["accepted_impossible"] += 1
                mismatches.append(raw)
        elif pn.is_valid_number(num):
            kind = pn.number_type(num)
            if kind in accept_types:
                counts["pn_valid_mobile"] += 1
                if not check.valid:
                    counts["missed_mobile"] += 1
                    mismatches.append(raw)
            elif kind == pn.PhoneNumberType.FIXED_LINE:
                counts["pn_fixed_line"] += 1
                if check.valid:
                    counts["accepted_fixed_line"] += 1
                    mismatches.append(raw)
            else:
                counts["pn_other"] += 1
                counts["other_accepted"] += check.valid
        else:  # possible length, but no known range: our non-strict default accepts some of these
            counts["pn_other"] += 1
            counts["other_accepted"] += check.valid
        # Normalisation check: inputs written with "+" can go to phonenumbers as they are.
        text = raw.strip()
        if text.startswith("+") and check.valid:
            counts["raw_parse_checked"] += 1
            try:
                direct = pn.parse(text, None)
            except pn.NumberParseException:
                direct = None
            if direct is None or pn.format_number(direct, pn.PhoneNumberFormat.E164) != "+" + check.number:
                # By design: "+965 0 9876 5432" keeps its 0 in phonenumbers (an "Italian leading
                # zero", giving a number that is not valid) while we drop a trunk 0 written after
                # the country code, as the seed client does. Anything else is a real mismatch.
                trunk_zero = (
                    direct is not None
                    and direct.italian_leading_zero
                    and not pn.is_valid_number(direct)
                    and check.number == f"{direct.country_code}{direct.national_number}"
                )
                counts["raw_parse_trunk_zero" if trunk_zero else "raw_parse_mismatch"] += 1
    counts["disagreements"] = (
        counts["missed_mobile"]
        + counts["accepted_fixed_line"]
        + counts["accepted_impossible"]
        + counts["accepted_unparsable"]
    )
    counts["examples"] = mismatches[:10]
    return counts


def seed_agreement(inputs: list[str]) -> dict:
    """How the seed client's verdicts compare with phonenumbers' on the same sample."""
    import phonenumbers as pn
    from kwtsms._core import validate_phone_input

    out = {"seed_accepted_fixed_line": 0, "seed_accepted_impossible_or_unknown": 0, "seed_missed_mobile": 0}
    for raw in inputs:
        ok, _, number = validate_phone_input(raw)
        try:
            num = pn.parse("+" + number, None) if number else None
        except pn.NumberParseException:
            num = None
        valid = num is not None and pn.is_valid_number(num)
        kind = pn.number_type(num) if valid else None
        if ok and (num is None or not pn.is_possible_number(num)):
            out["seed_accepted_impossible_or_unknown"] += 1
        elif ok and kind == pn.PhoneNumberType.FIXED_LINE:
            out["seed_accepted_fixed_line"] += 1
        elif not ok and kind in (pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE_OR_MOBILE):
            out["seed_missed_mobile"] += 1
    return out


def run(n: int = 1_000_000, repeats: int = 3, sample: int = 100_000) -> dict:
    from kwtsms._core import validate_phone_input

    inputs = generate(n)

    def seed_loop() -> None:
        for raw in inputs:
            validate_phone_input(raw)

    result_holder: dict = {}

    def ours() -> None:
        result_holder["r"] = prepare_recipients(inputs)

    seed_runs, our_runs = [], []
    for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
        seed_runs.append(_time(seed_loop))
        our_runs.append(_time(ours))
    seed_times, our_times = [w for w, _ in seed_runs], [w for w, _ in our_runs]
    seed_cpu, our_cpu = [c for _, c in seed_runs], [c for _, c in our_runs]
    recipients = result_holder["r"]
    picked = random.Random(SEED + 1).sample(inputs, min(sample, n))
    figures = {
        "inputs": n,
        "seed_seconds": min(seed_times),
        "ours_seconds": min(our_times),
        "ours_first_run_seconds": our_times[0],  # includes compiling the metadata
        "speedup": min(seed_times) / min(our_times),
        "speedup_median": statistics.median(seed_times) / statistics.median(our_times),
        "speedup_cpu": min(seed_cpu) / min(our_cpu),
        "speedup_first_run": statistics.median(seed_times) / our_times[0],  # a fresh process's one list
        "seed_runs_seconds": seed_times,
        "ours_runs_seconds": our_times,
        "seed_per_number_us": min(seed_times) / n * 1e6,
        "ours_per_number_us": min(our_times) / n * 1e6,
        "valid": len(recipients.valid),
        "invalid": len(recipients.invalid),
        "duplicates": len(recipients.duplicates),
        "accounted": recipients.total_inputs,
        "agreement": agreement(picked),
        "seed_vs_phonenumbers": seed_agreement(picked),
    }
    return figures


def _count(value: str) -> int:
    """A whole number of at least 1 ("200000" or "200_000"); argparse names the argument."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_prepare.py",
        description="Times prepare_recipients against the seed client's validate_phone_input loop on "
        "the same N generated inputs, interleaved, and checks our verdicts against phonenumbers on a "
        "sample of up to 100,000 of them.",
    )
    parser.add_argument(
        "n", nargs="?", type=_count, default=1_000_000, metavar="N", help="inputs to generate (1,000,000)"
    )
    parser.add_argument(
        "repeats", nargs="?", type=_count, default=3, metavar="REPEATS", help="timed runs of each (3)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    n, repeats = args.n, args.repeats
    f = run(n, repeats, sample=min(100_000, n))
    a = f["agreement"]
    rows = [
        ("inputs", f"{f['inputs']:,}"),
        (
            "seed validate_phone_input loop",
            f"{f['seed_seconds']:.2f} s ({f['seed_per_number_us']:.2f} µs/number)",
        ),
        ("our prepare_recipients", f"{f['ours_seconds']:.2f} s ({f['ours_per_number_us']:.2f} µs/number)"),
        (
            "our first run (metadata compile)",
            f"{f['ours_first_run_seconds']:.2f} s ({f['speedup_first_run']:.2f}x the seed's median)",
        ),
        (
            "speed-up (best wall / median wall / best CPU)",
            f"{f['speedup']:.2f}x / {f['speedup_median']:.2f}x / {f['speedup_cpu']:.2f}x",
        ),
        ("  seed runs (s)", " ".join(f"{x:.2f}" for x in f["seed_runs_seconds"])),
        ("  our runs (s)", " ".join(f"{x:.2f}" for x in f["ours_runs_seconds"])),
        ("valid / invalid / duplicates", f"{f['valid']:,} / {f['invalid']:,} / {f['duplicates']:,}"),
        ("every input accounted", str(f["accounted"] == f["inputs"])),
        ("agreement sample", f"{a['inputs']:,}"),
        ("  phonenumbers: valid mobile", f"{a['pn_valid_mobile']:,} (we rejected {a['missed_mobile']})"),
        ("  phonenumbers: fixed line", f"{a['pn_fixed_line']:,} (we accepted {a['accepted_fixed_line']})"),
        ("  phonenumbers: impossible", f"{a['pn_impossible']:,} (we accepted {a['accepted_impossible']})"),
        (
            "  phonenumbers: bad code/unparsable",
            f"{a['pn_unknown_code_or_unparsable']:,} (we accepted {a['accepted_unparsable']})",
        ),
        (
            "  other (non-mobile types, unknown ranges)",
            f"{a['pn_other']:,} (we accepted {a['other_accepted']})",
        ),
        ("  disagreements", str(a["disagreements"])),
        (
            "  '+' inputs parsed raw by phonenumbers",
            f"{a['raw_parse_checked']:,} (different number: {a['raw_parse_mismatch']}; trunk 0 dropped "
            f"by design: {a['raw_parse_trunk_zero']})",
        ),
    ]
    for key, value in f["seed_vs_phonenumbers"].items():
        rows.append((f"  {key.replace('_', ' ')}", f"{value:,}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if a["examples"]:
        print("disagreeing inputs:", a["examples"])


if __name__ == "__main__":
    main()
