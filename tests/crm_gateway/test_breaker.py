import logging
import time

import pytest
from django.test import override_settings

from crm_gateway import redis_health
from crm_gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.fakes.caches import DOWN_CACHES


def test_it_opens_after_the_threshold_of_failures_in_a_row(caplog):
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    with caplog.at_level(logging.WARNING, logger="crm_gateway.breaker"):
        for _ in range(2):
            breaker.record_failure()
        assert breaker.state() == CLOSED and breaker.allow()
        breaker.record_failure()
    assert breaker.state() == OPEN
    assert not breaker.allow()
    assert "opened after 3 failures" in caplog.text


def test_it_forgets_failures_after_a_success():
    breaker = CircuitBreaker(threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state() == CLOSED


def test_it_half_opens_after_the_cool_down_for_exactly_one_caller(caplog):
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.1)
    breaker.record_failure()
    assert not breaker.allow()
    time.sleep(0.15)
    assert breaker.state() == HALF_OPEN
    with caplog.at_level(logging.INFO, logger="crm_gateway.breaker"):
        assert breaker.allow()
    assert not breaker.allow()  # the trial call is in flight
    assert "half-open" in caplog.text


def test_it_closes_when_the_trial_call_succeeds(caplog):
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.05)
    breaker.record_failure()
    time.sleep(0.1)
    assert breaker.allow()
    with caplog.at_level(logging.INFO, logger="crm_gateway.breaker"):
        breaker.record_success()
    assert breaker.state() == CLOSED and breaker.allow() and breaker.allow()
    assert "closed" in caplog.text


def test_it_reopens_when_the_trial_call_fails(caplog):
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.05)
    breaker.record_failure()
    time.sleep(0.1)
    assert breaker.allow()
    with caplog.at_level(logging.WARNING, logger="crm_gateway.breaker"):
        breaker.record_failure()
    assert breaker.state() == OPEN and not breaker.allow()
    assert "re-opened" in caplog.text


def test_it_frees_the_trial_slot_when_the_trial_caller_never_reports():
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.05, probe_timeout_s=0.1)
    breaker.record_failure()
    time.sleep(0.1)
    assert breaker.allow()
    time.sleep(0.15)
    assert breaker.allow()


def test_it_shares_state_between_workers_through_redis():
    worker_a = CircuitBreaker(threshold=2, cooldown_s=60)
    worker_b = CircuitBreaker(threshold=2, cooldown_s=60)
    worker_a.record_failure()
    worker_b.record_failure()
    assert not worker_a.allow() and not worker_b.allow()


@override_settings(CACHES=DOWN_CACHES)
def test_it_keeps_working_in_process_when_redis_is_down(caplog):
    breaker = CircuitBreaker(threshold=2, cooldown_s=0.05)
    with caplog.at_level(logging.WARNING, logger="crm_gateway.breaker"):
        assert breaker.allow()
        breaker.record_failure()
        breaker.record_failure()
    assert breaker.state() == OPEN and not breaker.allow()
    assert "Redis unavailable" in caplog.text
    time.sleep(0.1)
    assert breaker.allow() and not breaker.allow()
    breaker.record_success()
    assert breaker.state() == CLOSED


@pytest.mark.parametrize("threshold", [1, 4])
def test_it_counts_failures_up_to_any_threshold(threshold):
    breaker = CircuitBreaker(threshold=threshold)
    for _ in range(threshold - 1):
        breaker.record_failure()
    assert breaker.state() == CLOSED
    breaker.record_failure()
    assert breaker.state() == OPEN


@pytest.mark.live
def test_it_lets_exactly_one_of_many_workers_probe_on_real_redis(live_redis_url):
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    assert settings.CACHES["default"]["LOCATION"] == live_redis_url
    CircuitBreaker(threshold=1, cooldown_s=0.1).record_failure()
    time.sleep(0.2)
    workers = [CircuitBreaker(threshold=1, cooldown_s=0.1) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        allowed = list(pool.map(lambda breaker: breaker.allow(), workers))
    assert allowed.count(True) == 1
    workers[allowed.index(True)].record_success()
    assert all(breaker.state() == CLOSED for breaker in workers)


def test_it_uses_in_process_state_while_redis_is_left_alone(monkeypatch):
    redis_health.mark_down(ConnectionError("hung"))

    def no_redis(*args, **kwargs):
        raise AssertionError("Redis was called")

    monkeypatch.setattr("crm_gateway.breaker._CacheStore.get", no_redis)
    breaker = CircuitBreaker(threshold=1, cooldown_s=60)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state() == OPEN
