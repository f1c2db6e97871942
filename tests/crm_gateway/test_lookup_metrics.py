"""supportbot_crm_cache_lookups_total{result}: hit, negative, miss, stale, error and bypass."""

import pytest
from django.core.cache import cache

from conversations import metrics
from crm_gateway import keys, lookup, redis_health
from crm_gateway.lookup import lookup_points
from tests.fakes.crm_api import CountingClient, use_runtime

CPF = "52998224725"
RESULTS = ("hit", "negative", "miss", "stale", "error", "bypass")


@pytest.fixture(autouse=True)
def runtime(monkeypatch):
    lookup.counters.reset()
    return use_runtime(monkeypatch, crm_timeout_seconds=2, backoff_base_ms=10, backoff_cap_ms=50)


def counts() -> dict[str, float]:
    return {r: metrics.counter_value(metrics.CRM_CACHE_LOOKUPS, result=r) for r in RESULTS}


def moved(before: dict, after: dict) -> dict:
    return {r: after[r] - before[r] for r in RESULTS if after[r] != before[r]}


def test_a_miss_then_a_hit():
    before = counts()
    client = CountingClient()
    lookup_points(CPF, client=client)
    lookup_points(CPF, client=client)
    assert moved(before, counts()) == {"miss": 1, "hit": 1}


def test_a_cached_unknown_customer_is_a_negative_hit():
    client = CountingClient({})
    lookup_points(CPF, client=client)
    before = counts()
    lookup_points(CPF, client=client)
    assert moved(before, counts()) == {"negative": 1}


def test_a_failed_crm_serves_stale_or_errs():
    client = CountingClient()
    lookup_points(CPF, client=client)
    cache.delete(keys.points_key(CPF))
    client.fail = True
    before = counts()
    lookup_points(CPF, client=client)
    assert moved(before, counts()) == {"miss": 1, "stale": 1}
    cache.delete_many(keys.document_keys(CPF))
    before = counts()
    lookup_points(CPF, client=client)
    assert moved(before, counts()) == {"miss": 1, "error": 1}


def test_a_lookup_while_redis_is_down_bypasses_the_cache():
    redis_health.mark_down(ConnectionError("down"))
    before_bypass = metrics.counter_value(metrics.CRM_CACHE_LOOKUPS, result="bypass")
    lookup_points(CPF, client=CountingClient())
    redis_health.reset()  # so the metrics can be read back
    after = metrics.counter_value(metrics.CRM_CACHE_LOOKUPS, result="bypass")
    assert after == before_bypass + 1
