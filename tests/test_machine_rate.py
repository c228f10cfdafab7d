"""The machine-wide pacer (machine_rate.py): one gateway's pace shared by the processes of a machine.

On a fake clock: what the lock file holds and how a bad one is bounded, the folder's safety and
the fallbacks. With real processes: four processes of 10 requests each at rate 5 against one
sandbox over loopback begin at most 5 requests in any one second (the same processes with a bucket
each begin many more: the test can fail).
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
from itertools import pairwise
from pathlib import Path

import pytest
from sandbox_helpers import FakeTime, logged

from airflow_provider_kwtsms.constants import MAX_RATE
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.rate import machine as machine_rate
from airflow_provider_kwtsms.rate.bucket import TokenBucket, interval
from airflow_provider_kwtsms.rate.machine import (
    MAX_AHEAD,
    QUEUE_AHEAD,
    MachineBucket,
    file_name,
    format_record,
    gateway_target,
    parse_record,
)

TARGET = "gw.example:443"


def bucket(tmp_path: Path, fake: FakeTime, rate: float = MAX_RATE, target: str = TARGET) -> MachineBucket:
    return MachineBucket(target, rate, directory=str(tmp_path / "rates"), clock=fake.clock, sleep=fake.sleep)


def most_in_one_second(starts: list[float]) -> int:
    starts = sorted(starts)
    return max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts)


def stored_tat(pacer: MachineBucket) -> float | None:
    return parse_record(Path(pacer.path).read_bytes())


# --- one file, several buckets (each its own open file, as separate processes are) ----------------


def test_buckets_of_one_gateway_share_one_pace(tmp_path):
    fake = FakeTime(5000.0)
    pacers = [bucket(tmp_path, fake) for _ in range(4)]
    starts = []
    for _ in range(10):
        for pacer in pacers:  # four "processes" taking turns, each ready at once
            pacer.acquire()
            starts.append(fake.now)
    assert [b - a for a, b in pairwise(starts)] == pytest.approx([interval(MAX_RATE)] * 39)
    assert most_in_one_second(starts) == 5
    assert all(pacer.shared for pacer in pacers)


def test_without_the_file_each_bucket_would_go_at_its_own_rate(tmp_path):
    # What the file prevents: four buckets of their own begin 4 requests at each step.
    fake = FakeTime(5000.0)
    pacers = [TokenBucket(MAX_RATE, clock=fake.clock, sleep=fake.sleep) for _ in range(4)]
    starts = []
    for _ in range(10):
        for pacer in pacers:
            pacer.acquire()
            starts.append(fake.now)
    assert most_in_one_second(starts) == 20


def test_other_gateways_have_their_own_file(tmp_path):
    fake = FakeTime(5000.0)
    one, other = bucket(tmp_path, fake), bucket(tmp_path, fake, target="127.0.0.1:8765")
    assert one.acquire() == 0.0 and other.acquire() == 0.0
    assert one.path != other.path


def test_a_slower_process_keeps_its_own_spacing_and_others_respect_it(tmp_path):
    fake = FakeTime(5000.0)
    slow, fast = bucket(tmp_path, fake, rate=0.1), bucket(tmp_path, fake, rate=5)
    slow.acquire()
    assert fast.acquire() == pytest.approx(interval(0.1))  # the slow one's gap holds: 10.2 s
    assert slow.acquire() == pytest.approx(interval(5))  # and its own spacing counts from its start


def test_a_process_reserves_at_most_queue_ahead_then_sleeps_and_asks_again(tmp_path):
    # Ten processes ready at one moment: the file never holds a TAT beyond QUEUE_AHEAD and one
    # interval, which is what makes MAX_AHEAD a safe bound for untrusted values.
    fake = FakeTime(5000.0)
    pacers = [bucket(tmp_path, fake) for _ in range(10)]
    origin = fake.now
    waits = [pacer._step() for pacer in pacers]
    reserved = [wait for ok, wait in waits if ok]
    # Only turns within QUEUE_AHEAD are handed out (here the first, at once): a late start is then
    # known (started()) before the next turns are given, which count from it.
    assert reserved == pytest.approx([k * interval(5) for k in range(len(reserved))])
    assert len(reserved) == 1 + int(QUEUE_AHEAD / interval(5))
    assert (stored_tat(pacers[0]) or 0) - origin <= QUEUE_AHEAD + interval(5)
    assert all(wait > 0 for ok, wait in waits if not ok)


def test_a_late_start_pushes_back_the_turns_not_handed_out_yet(tmp_path):
    # Process A's turn comes at t; its request starts 0.01 s late (within LATE_START). Without
    # started(), B's turn stayed at t + interval, closer to A's real start than the rate allows.
    fake = FakeTime(5000.0)
    a, b = bucket(tmp_path, fake), bucket(tmp_path, fake)
    a.acquire()
    turn = fake.now
    fake.now += 0.01  # A's request really starts now
    assert a.started() is True
    b.acquire()
    assert fake.now - (turn + 0.01) == pytest.approx(interval(MAX_RATE))


def test_a_turn_missed_is_given_up_and_the_request_takes_a_new_one(tmp_path):
    # A's turn comes at t, but its process runs again only 0.1 s later (a busy CPU), after B's turn
    # was handed out. Sent then, A's request would arrive 0.1 s closer to B's than the rate allows:
    # six arrivals could fall within one second at the firewall (deploy scenario g was blocked on a
    # loaded machine). So A gives its turn up and takes the next free one, after B's.
    fake = FakeTime(5000.0)
    a, b = bucket(tmp_path, fake), bucket(tmp_path, fake)
    a.acquire()
    turn = fake.now
    fake.now += 0.1
    b.acquire()
    b_start = fake.now
    assert b.started() is True
    assert a.started() is False  # missed: A's request does not start
    a.acquire()
    assert a.started() is True
    assert b_start == pytest.approx(turn + interval(MAX_RATE))
    assert fake.now - b_start == pytest.approx(interval(MAX_RATE))  # A's real start, one interval on


def test_a_thread_pool_s_turns_are_judged_per_thread(tmp_path):
    # Two threads of one client each hold a turn; each start is judged against its own turn.
    fake = FakeTime(5000.0)
    pacer = bucket(tmp_path, fake)
    results: list[bool] = []

    def take_turn_and_start() -> None:
        pacer.acquire()
        results.append(pacer.started())

    first = threading.Thread(target=take_turn_and_start)
    first.start()
    first.join()
    take_turn_and_start()
    assert results == [True, True]


# --- the file's safety ------------------------------------------------------------------------


def test_the_folder_is_0700_and_the_file_0600_named_by_a_hash_of_the_gateway(tmp_path):
    pacer = bucket(tmp_path, FakeTime(5000.0))
    assert stat.S_IMODE(os.stat(tmp_path / "rates").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pacer.path).st_mode) == 0o600
    assert Path(pacer.path).name == file_name(TARGET) and "gw" not in Path(pacer.path).name


def test_the_gateway_is_its_lower_case_host_and_port():
    assert gateway_target("https://WWW.kwtsms.com/") == "www.kwtsms.com:443"
    assert gateway_target("https://www.kwtsms.com:443") == "www.kwtsms.com:443"
    assert gateway_target("http://127.0.0.1:8765") == "127.0.0.1:8765"
    assert gateway_target("http://gw.example") == "gw.example:80"


def test_the_file_names_no_account_and_holds_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    client = KwtSMSClient("acct_user", "Pw-secret-9", base_url="http://127.0.0.1:9", rate=2)
    pacer = client._bucket
    assert isinstance(pacer, MachineBucket) and pacer.shared
    text = Path(pacer.path).read_bytes().decode() + pacer.path + repr(pacer)
    assert "acct_user" not in text and "Pw-secret" not in text


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"\xff\xfe\x00", b"kwtsms-rate/1 x 12", b"kwtsms-rate/1 - nan", b"1 2 3 4 5"],
)
def test_a_file_that_does_not_parse_is_ignored(tmp_path, content):
    fake = FakeTime(5000.0)
    pacer = bucket(tmp_path, fake)
    Path(pacer.path).write_bytes(content)
    assert pacer.acquire() == 0.0
    assert stored_tat(pacer) == pytest.approx(fake.now + interval(MAX_RATE))  # rewritten, well formed


def test_a_record_of_another_boot_is_ignored(tmp_path):
    fake = FakeTime(5000.0)
    pacer = bucket(tmp_path, fake)
    Path(pacer.path).write_bytes(b"kwtsms-rate/1 another-boot %f\n" % (fake.now + 5))
    assert pacer.acquire() == 0.0


def test_a_far_future_tat_costs_at_most_max_ahead_once(tmp_path):
    fake = FakeTime(5000.0)
    pacer = bucket(tmp_path, fake)
    Path(pacer.path).write_bytes(format_record(fake.now + 1e9))
    assert pacer.acquire() == pytest.approx(MAX_AHEAD)
    assert pytest.approx(QUEUE_AHEAD + interval(0.1)) == MAX_AHEAD  # the queue, and the slowest gap
    assert pacer.acquire() == pytest.approx(interval(MAX_RATE))  # then the pace as usual


def test_a_folder_removed_while_running_is_made_again(tmp_path):
    fake = FakeTime(5000.0)
    pacer = bucket(tmp_path, fake)
    pacer.acquire()
    os.remove(pacer.path)
    os.rmdir(tmp_path / "rates")
    pacer.acquire()
    assert pacer.shared and stored_tat(pacer) is not None


def _fallbacks(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if "machine-wide request pace is unavailable" in r.getMessage()
    ]


def test_a_folder_other_users_can_write_is_not_used(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    fake = FakeTime(5000.0)
    pacers = [
        MachineBucket(TARGET, 5, directory=str(shared), clock=fake.clock, sleep=fake.sleep) for _ in range(3)
    ]
    assert not any(pacer.shared for pacer in pacers)
    assert list(shared.iterdir()) == []
    assert len(_fallbacks(caplog)) == 1  # one warning, however many clients
    assert "writable by other users" in _fallbacks(caplog)[0]
    pacers[0].acquire()
    assert pacers[0].acquire() == pytest.approx(interval(5))  # still paced, by this process alone


def test_a_folder_that_cannot_be_made_falls_back_with_one_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    fake = FakeTime(5000.0)
    missing = tmp_path / "no" / "such" / "folder"
    pacer = MachineBucket(TARGET, 5, directory=str(missing), clock=fake.clock, sleep=fake.sleep)
    assert not pacer.shared and "this process only" in repr(pacer)
    assert len(_fallbacks(caplog)) == 1 and "KWTSMS_RATE_DIR" in _fallbacks(caplog)[0]


def test_a_system_without_flock_falls_back(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(machine_rate, "fcntl", None)
    pacer = bucket(tmp_path, FakeTime(5000.0))
    assert not pacer.shared and "no fcntl" in _fallbacks(caplog)[0]


def test_a_symlink_in_place_of_the_file_is_refused(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    folder = tmp_path / "rates"
    folder.mkdir(mode=0o700)
    (folder / file_name(TARGET)).symlink_to(tmp_path / "elsewhere")
    pacer = bucket(tmp_path, FakeTime(5000.0))
    assert not pacer.shared and not (tmp_path / "elsewhere").exists()


def test_pause_holds_this_process_only(tmp_path):
    fake = FakeTime(5000.0)
    one, two = bucket(tmp_path, fake), bucket(tmp_path, fake)
    one.acquire()
    one.pause(3.0)
    assert two.acquire() == pytest.approx(interval(5))  # the other process goes on at the pace
    assert one.acquire() == pytest.approx(3.0 - interval(5))


@pytest.mark.parametrize("rate", [0, 5.5, float("nan"), float("inf")])
def test_the_rate_is_checked_here_too(tmp_path, rate):
    with pytest.raises(KwtSMSInputError, match="rate"):
        bucket(tmp_path, FakeTime(5000.0), rate=rate)


# --- the default pacer of the client and the SMTP sender -----------------------------------------


def test_the_client_uses_the_machine_pacer_unless_its_clock_is_injected(tmp_path, monkeypatch):
    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    real = KwtSMSClient("u", "p", base_url="http://127.0.0.1:9", rate=5)
    assert isinstance(real._bucket, MachineBucket) and real._bucket.target == "127.0.0.1:9"
    fake = FakeTime(5000.0)
    tested = KwtSMSClient("u", "p", base_url="http://127.0.0.1:9", rate=5, clock=fake.clock, sleep=fake.sleep)
    assert isinstance(tested._bucket, TokenBucket)  # fake-clock tests stay deterministic


def test_the_smtp_sender_uses_the_machine_pacer_too(tmp_path, monkeypatch):
    from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    sender = KwtSMSSmtpSender("u", "p", smtp_host="127.0.0.1", from_address="ops@example.com", rate=5)
    assert (
        isinstance(sender._bucket, MachineBucket)
        and sender._bucket.target == "smtp://127.0.0.1:25/sms@kwtsms.com"
    )
    with pytest.raises(KwtSMSInputError, match="firewall"):
        KwtSMSSmtpSender("u", "p", smtp_host="127.0.0.1", from_address="ops@example.com", rate=6)


# --- real processes ------------------------------------------------------------------------------

CHILD = r"""
import sys, time
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.rate.bucket import TokenBucket

url, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pacer = TokenBucket(5) if mode == "own" else None  # "own": the old default, a bucket per process
client = KwtSMSClient("sandbox_user", "sandbox_pass", base_url=url, rate=5, max_retries=0, pacer=pacer)
starts = []
acquire = client._bucket.acquire
def logged_acquire():
    waited = acquire()
    starts.append(time.monotonic())  # CLOCK_MONOTONIC: one clock for every process of the machine
    return waited
client._bucket.acquire = logged_acquire
calls = [client.balance, client.sender_ids, client.coverage, lambda: client.validate(["96550000001"]),
         lambda: client.status("0" * 20), lambda: client.dlr("0" * 20)]
print("ready", flush=True)
sys.stdin.readline()  # all processes start together
for i in range(count):
    try:
        calls[i % len(calls)]()
    except KwtSMSError:
        pass  # an unknown msg-id is refused: the request still counted
print(" ".join(repr(s) for s in starts), flush=True)
"""


def run_processes(url: str, *, processes: int, count: int, mode: str, env: dict[str, str]) -> list[float]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(count), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    starts: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        starts += [float(s) for s in out.split()]
    return starts


@pytest.mark.serial  # counts arrivals in real seconds: run alone, not beside other tests
@pytest.mark.parametrize("mode", ["machine", "own"])
def test_four_processes_at_rate_five_begin_at_most_five_requests_in_any_second(
    kwtsms_sandbox_factory, tmp_path, mode
):
    # 4 processes x 10 reads (balance, sender IDs, coverage, validate, status, dlr) at rate=5 each.
    # "machine": the default pacer, shared through the lock file. "own": a bucket per process, as
    # before: the same check then fails, so it can.
    sb = kwtsms_sandbox_factory(rate=None, coverage=["965"])
    env = {**os.environ, "KWTSMS_RATE_DIR": str(tmp_path)}
    starts = run_processes(sb.url, processes=4, count=10, mode=mode, env=env)
    arrivals = [r["time"] for r in logged(sb)]
    assert len(starts) == len(arrivals) == 40  # every request recorded
    here, there = most_in_one_second(starts), most_in_one_second(arrivals)
    spans = [b - a for a, b in zip(sorted(arrivals), sorted(arrivals)[5:], strict=False)]
    print(
        f"{mode}: most starts in one second: {here} (logged by the processes), {there} (at the "
        f"sandbox); shortest span of 6 arrivals {min(spans, default=0):.3f} s"
    )
    if mode == "machine":
        assert here <= 5 and there <= 5
        assert min(b - a for a, b in pairwise(sorted(starts))) >= 1 / MAX_RATE
    else:
        assert here > 5 and there > 5
