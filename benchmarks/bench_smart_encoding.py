"""Credits with and without smart encoding, on a corpus of realistic messages.

    .venv/bin/python benchmarks/bench_smart_encoding.py [--recipients 1000]

Each message is planned the way a send plans it (cleaned, then smart-encoded or not) and its
pages counted as kwtSMS counts them; credits = pages x recipients. The official ``kwtsms``
client (the bench extra) has no look-alike conversion and no page estimate of its own: it
learns the charge from the gateway's answer. Its column ("official") is the text its ``send``
would put on the wire, the output of its own ``kwtsms.clean_message``, counted by the same
rule; "-" when it is not installed. Deterministic: no network, no timing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_kwtsms.text.message import clean_message, measure_message
from airflow_provider_kwtsms.text.smart_encoding import smart_encode

# (kind, text): copy-pasted marketing text, OTPs, alerts, Arabic, mixed.
CORPUS = [
    ("marketing", "Don’t miss our weekend sale – up to 50% off everything in store… Visit us today!"),
    (
        "marketing",
        "“Ramadan Kareem” from all of us at Blue Bay Café! Enjoy 2-for-1 iftar boxes — "
        "order before 5 pm and we’ll deliver free of charge to Salmiya, Hawally and Jabriya.",
    ),
    ("marketing", "New arrivals\u00a0are in store now. Shop the collection online at example.com/new"),
    (
        "marketing",
        "Your loyalty points expire on 31 Dec. Redeem them for vouchers, free delivery or "
        "charity donations… It’s quick: open the app › Rewards › Redeem.",
    ),
    ("otp", "Your verification code is 482913. It expires in 5 minutes."),
    ("otp", "Code: ４８２９１３ – do not share it with anyone."),
    ("otp", "Your one-time password is 771204. Don’t share it – our staff will never ask for it."),
    ("alert", "ALERT: disk 95% full on db-prod-1 – check /var/lib/postgresql"),
    ("alert", "Task ‘load_orders’ failed in DAG ‘daily_sales’ (try 3/3): ConnectionError – see logs"),
    ("alert", "Pipeline finished • 12,408 rows loaded • 0 errors • 4 min 12 s"),
    ("arabic", "طلبك رقم 1042 جاهز للاستلام من فرع السالمية. شكراً لتسوقكم معنا."),
    ("arabic", "رمز التحقق الخاص بك هو 482913 – لا تشاركه مع أي شخص."),
    ("mixed", "Order 1042 ready – طلبك جاهز"),
    ("mixed", "Meeting at 10:00 — Room 3 • bring the Q3 report “final” version"),
    (
        "marketing",
        "Exclusive for you: 30% off all summer collections this week only – in store and "
        "online. Use code SUMMER30 at checkout. T&Cs apply… Reply STOP to opt out.",
    ),
]


def official_cleaner() -> Callable[[str], str] | None:
    """The official client's own cleaning (its ``send`` applies it), or None without the bench extra."""
    try:
        from kwtsms import clean_message as official_clean
    except ImportError:
        return None
    return official_clean


def measure(recipients: int) -> list[dict]:
    official_clean = official_cleaner()
    rows = []
    for kind, text in CORPUS:
        cleaned = clean_message(text)
        smart = smart_encode(cleaned)
        written = measure_message(cleaned)
        sent = measure_message(smart.text)
        official = None if official_clean is None else measure_message(official_clean(text))
        rows.append(
            {
                "kind": kind,
                "text": text,
                "as_written": (written.encoding, written.pages),
                "smart": (sent.encoding, sent.pages),
                "replaced": smart.replaced,
                "credits_written": written.pages * recipients,
                "credits_smart": sent.pages * recipients,
                "official": None if official is None else (official.encoding, official.pages),
                "credits_official": None if official is None else official.pages * recipients,
            }
        )
    return rows


@dataclass(frozen=True)
class Totals:
    written: int  # credits as written
    smart: int  # credits with smart encoding
    official: int | None  # credits of the official client's text; None when it is not installed
    arabic_kept: int  # Arabic messages left exactly as written (no character replaced, same pages)
    arabic: int

    @property
    def saved(self) -> float:
        return (self.written - self.smart) / self.written


def totals(rows: list[dict]) -> Totals:
    """The corpus's figures, for this script and run_all.py alike."""
    official = [r["credits_official"] for r in rows]
    arabic = [r for r in rows if r["kind"] == "arabic"]
    return Totals(
        written=sum(r["credits_written"] for r in rows),
        smart=sum(r["credits_smart"] for r in rows),
        official=None if None in official else sum(official),
        arabic_kept=sum(r["replaced"] == 0 and r["smart"] == r["as_written"] for r in arabic),
        arabic=len(arabic),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1000, help="recipients per message (default 1000)")
    args = parser.parse_args()
    rows = measure(args.recipients)
    print(f"Smart encoding on {len(rows)} messages, {args.recipients:,} recipients each")
    header = f"{'kind':<10} {'as written':<12} {'smart':<12} {'replaced':>8} {'credits':>17}"
    print(f"{header}  {'official':<12} text")
    for row in rows:
        written = f"{row['as_written'][0]} {row['as_written'][1]}p"
        smart = f"{row['smart'][0]} {row['smart'][1]}p"
        official = "-" if row["official"] is None else f"{row['official'][0]} {row['official'][1]}p"
        credits = f"{row['credits_written']:,} -> {row['credits_smart']:,}"
        line = f"{row['kind']:<10} {written:<12} {smart:<12} {row['replaced']:>8} {credits:>17}"
        print(f"{line}  {official:<12} {row['text'][:40]}")
    total = totals(rows)
    print(
        f"Total: {total.written:,} credits as written, {total.smart:,} with smart encoding: "
        f"{total.written - total.smart:,} saved ({total.saved:.0%})"
    )
    if total.official is not None:
        print(f"The official client (kwtsms, its own clean_message): {total.official:,} credits")
    else:
        print("The official client: not installed (pip install -e '.[bench]')")
    print(f"Arabic messages left exactly as written: {total.arabic_kept}/{total.arabic}")


if __name__ == "__main__":
    main()
