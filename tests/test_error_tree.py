"""Every error of ours is in the KwtSMSError tree (issue 22): a user catches one class.

Exceptions that never leave their module (signals caught where they are raised and turned into
one of ours) are listed with the place that turns them; the sandbox's are the gateway stand-in's
own and never reach a user of the provider.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import airflow_provider_kwtsms
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError

PACKAGE = Path(airflow_provider_kwtsms.__file__).parent

# Caught where raised, never seen by a caller: the class -> what turns it into an error of ours.
INTERNAL_SIGNALS = {
    "gateway.http_limits.DeadlineExceeded": "gateway.transport: KwtSMSNetworkError",
    "gateway.http_limits.AnswerTooLarge": "gateway.transport: KwtSMSNetworkError",
    "gateway.http_limits.UnreadableEncoding": "gateway.transport: KwtSMSNetworkError",
    "gateway.answer.UnreadableAnswer": "gateway.transport: KwtSMSNetworkError",
    "rate.shared.StoreTimeout": "rate.shared.SharedBucket: the circuit breaker (pace on this machine)",
    "ledger.codec.DamagedValue": "ledger.stored: LedgerDamagedError",
    "ledger.codec.OtherVersion": "ledger.stored: LedgerDamagedError",
    "alerts.guard.DamagedRecord": "alerts.guard: a fresh (idle) state",
}


def our_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="airflow_provider_kwtsms."):
        if ".sandbox" in info.name or info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_exception_class_of_ours_is_in_the_tree_or_an_internal_signal() -> None:
    outside = []
    for name in our_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, BaseException):
                continue
            short = f"{name.removeprefix('airflow_provider_kwtsms.')}.{cls_name}"
            if not issubclass(cls, KwtSMSError) and short not in INTERNAL_SIGNALS:
                outside.append(short)
    assert outside == [], f"exceptions outside the KwtSMSError tree: {outside}"


def test_the_internal_signals_exist_and_are_caught_where_the_table_says() -> None:
    for short, where in INTERNAL_SIGNALS.items():
        module_name, cls_name = short.rsplit(".", 1)
        module = importlib.import_module(f"airflow_provider_kwtsms.{module_name}")
        assert issubclass(getattr(module, cls_name), Exception), short
        module_path = "/".join(where.split(":")[0].split(".")[:2])  # e.g. gateway/transport
        source = (PACKAGE / f"{module_path}.py").read_text()
        assert cls_name in source, f"{short} is not handled in {where}"


# `raise ValueError(` / `raise TypeError(` / `raise RuntimeError(` in our code: an error a caller
# would have to catch outside the tree. Pickling refusals stay TypeError (Python's protocol).
BUILTIN_RAISE = re.compile(r"raise (ValueError|TypeError|RuntimeError|KeyError|Exception)\(")
ALLOWED = {
    ("gateway/transport.py", "a Transport holds the API password and cannot be pickled"),
    ("gateway/redact.py", "a Redactor holds a secret and cannot be pickled"),
    ("gateway/answer.py", "is not a JSON number"),  # json's parse_constant hook, turned into UnreadableAnswer
    ("ledger/codec.py", "is not a JSON number"),  # the same hook, turned into DamagedValue
}


def test_our_code_raises_no_builtin_error_a_caller_would_have_to_catch() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("sandbox/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if BUILTIN_RAISE.search(line) and not any(
                relative == where and words in line for where, words in ALLOWED
            ):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    "make",
    [
        lambda: KwtSMSInputError("mobile is empty: give at least one number"),
        lambda: __import__("airflow_provider_kwtsms.smtp.body", fromlist=["x"]).SmtpFieldError(
            "sender", "sender must be one line"
        ),
    ],
)
def test_an_input_error_is_one_of_ours_and_a_value_error_and_permanent(make) -> None:
    error = make()
    assert isinstance(error, KwtSMSError) and isinstance(error, ValueError)
    assert error.permanent and not error.retryable and error.code == "INPUT"
    assert str(error) == error.description  # the message, not "INPUT: ..."
