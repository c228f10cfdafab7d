"""The sample output the docs show is what a real run prints: the client's against the sandbox
here; the README's quickstart log in tests/test_examples.py::test_quickstart (a real Airflow run);
docs/operator.md's in tests/test_config_errors.py (the same). tests/doc_samples.py says how a
sample is named and compared.
"""

from __future__ import annotations

import io
import logging
import re

import pytest
from airflow_support import REPO
from doc_samples import PAGES, assert_sample_in, samples, unnamed_output_blocks

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("page", PAGES)
def test_every_output_block_is_a_named_sample_that_a_test_checks(page):
    assert unnamed_output_blocks(page) == [], (
        f"{page}: an output block at these lines is not a named sample: name it "
        "(<!-- sample: NAME --> on the line before) and check it against a real run (tests/doc_samples.py)"
    )
    tests = "".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py"))
    unchecked = [name for name in samples(page) if f'"{name}"' not in tests]
    assert not unchecked, f"{page}: no test checks the samples {unchecked}"


@pytest.fixture
def provider_log():
    """What ``logging.basicConfig(level=logging.INFO)`` would print of the provider's loggers."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    logger = logging.getLogger("airflow_provider_kwtsms")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_the_client_pages_batch_log(kwtsms_sandbox_factory, provider_log):
    sandbox = kwtsms_sandbox_factory(balance=5000)
    with KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sandbox.url) as client:
        client.send([f"9656{i:07d}" for i in range(201)], "Your code is 1234")
    assert_sample_in(provider_log.getvalue(), "docs/client.md", "client-batch-log")


def test_the_client_pages_plan_line(kwtsms_sandbox_factory):
    sandbox = kwtsms_sandbox_factory(coverage=["965", "971"])
    with KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sandbox.url) as client:
        plan = client.plan_send([f"9715{i:08d}" for i in range(1000)], "Hello")  # UAE: 12 digits each
    assert one_line(plan.describe()) == one_line(samples("docs/client.md")["client-plan-line"])


def test_the_client_pages_field_size_error():
    with pytest.raises(KwtSMSInputError) as raised:
        KwtSMSClient("api_user_name_16", "api_pass")
    assert one_line(str(raised.value)) == one_line(samples("docs/client.md")["client-field-size-error"])


def test_a_sample_differing_from_the_run_fails_naming_the_line():
    run = (
        "INFO:x:kwtSMS batch 1/2 (#1): sent 200 numbers, msg-id 02f83afd4aa14ac48dd695edc5bfcf1f, 200 points"
    )
    with pytest.raises(AssertionError, match=re.escape("batch 1/2 (#1): sent 200 numbers, msg-id <msg-id>")):
        assert_sample_in(run, "docs/client.md", "client-batch-log")
