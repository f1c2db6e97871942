import itertools
import logging

from conversations.backoff import backoff_delays, wait_with_backoff
from tests.fakes.clock import FakeTime


def wait(fake: FakeTime, attempt, *, timeout_s: float, what: str = "test"):
    """wait_with_backoff on the default schedule (100 ms doubling to 2 s) and a fake clock."""
    return wait_with_backoff(
        attempt,
        base_ms=100,
        cap_ms=2000,
        timeout_s=timeout_s,
        what=what,
        sleep=fake.sleep,
        clock=fake.clock,
    )


def succeed_on(n: int):
    calls = itertools.count(1)
    return lambda: next(calls) >= n


def test_it_doubles_from_base_to_cap():
    delays = list(itertools.islice(backoff_delays(100, 2000), 8))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


def test_it_stays_at_the_cap_when_base_equals_cap():
    assert list(itertools.islice(backoff_delays(500, 500), 3)) == [0.5, 0.5, 0.5]


def test_it_returns_at_once_without_logging_when_the_first_attempt_succeeds(caplog):
    fake = FakeTime()
    with caplog.at_level(logging.INFO, logger="conversations.backoff"):
        result = wait(fake, lambda: True, timeout_s=60)
    assert result == (True, 1, 0.0)
    assert fake.sleeps == []
    assert caplog.records == []


def test_it_sleeps_on_the_schedule_and_logs_after_a_wait(caplog):
    fake = FakeTime()
    with caplog.at_level(logging.INFO, logger="conversations.backoff"):
        ok, attempts, waited = wait(fake, succeed_on(8), timeout_s=60, what="conversation 7 lock")
    assert (ok, attempts) == (True, 8)
    assert fake.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert round(waited, 6) == 7.1
    assert [r.getMessage() for r in caplog.records] == [
        "conversation 7 lock: got it after 8 attempts, 7100 ms"
    ]


def test_it_gives_up_at_the_timeout_and_logs_a_warning(caplog):
    fake = FakeTime()
    with caplog.at_level(logging.INFO, logger="conversations.backoff"):
        ok, attempts, waited = wait(fake, lambda: False, timeout_s=5, what="test lock")
    assert ok is False
    # 0.1+0.2+0.4+0.8+1.6 = 3.1 s, then the last sleep is cut to the 1.9 s left.
    assert fake.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 1.9]
    assert attempts == 7
    assert round(waited, 6) == 5.0
    warning = caplog.records[-1]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == "test lock: gave up after 7 attempts, 5000 ms"


def test_it_never_sleeps_past_the_timeout():
    fake = FakeTime()
    wait(fake, lambda: False, timeout_s=60)
    assert round(sum(fake.sleeps), 6) == 60.0
    assert max(fake.sleeps) == 2.0


def test_it_tries_once_with_a_zero_timeout():
    fake = FakeTime()
    result = wait(fake, lambda: False, timeout_s=0)
    assert result == (False, 1, 0.0)
    assert fake.sleeps == []


def test_it_logs_every_10th_attempt(caplog):
    fake = FakeTime()
    with caplog.at_level(logging.INFO, logger="conversations.backoff"):
        wait(fake, succeed_on(25), timeout_s=600, what="test lock")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "test lock: still waiting, attempt 10",
        "test lock: still waiting, attempt 20",
        "test lock: got it after 25 attempts, 41100 ms",
    ]
