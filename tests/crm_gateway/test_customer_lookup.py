"""The customer record (name, phones) through the cache: cached like the points (same TTLs,
single-flight, stale copy on failure), and a CRM without records checks nobody."""

import pytest
from django.conf import settings
from django.core.cache import cache

from crm_gateway import keys, lookup
from crm_gateway.client import CrmClient
from crm_gateway.lookup import ERROR, FOUND, UNKNOWN, lookup_customer
from tests.crm_gateway.test_lookup import run_concurrently
from tests.fakes.crm_api import CountingClient, use_runtime

CPF = "52998224725"
RECORD = {"name": "Maria", "phones": ["5511987650001"]}


@pytest.fixture(autouse=True)
def runtime(monkeypatch):
    lookup.counters.reset()
    return use_runtime(
        monkeypatch,
        crm_cache_ttl_seconds=300,
        crm_negative_ttl_seconds=60,
        crm_stale_ttl_seconds=3600,
        crm_timeout_seconds=2,
        backoff_base_ms=10,
        backoff_cap_ms=50,
    )


def crm(**kwargs) -> CountingClient:
    return CountingClient(records={CPF: dict(RECORD)}, **kwargs)


def test_it_asks_the_crm_once_then_reads_the_cache():
    client = crm()
    first, second = lookup_customer(CPF, client=client), lookup_customer(CPF, client=client)
    assert (first.status, first.customer, first.source) == (FOUND, RECORD, "crm")
    assert (second.customer, second.source) == (RECORD, "cache")
    assert client.record_calls == [CPF] and client.calls == []  # the points are not asked


def test_it_keeps_an_unknown_customer_for_the_negative_ttl():
    client = crm()
    assert lookup_customer("11144477735", client=client).status == UNKNOWN
    assert lookup_customer("11144477735", client=client).source == "cache"
    assert 0 < cache.ttl(keys.customer_key("11144477735")) <= 60


def test_it_serves_the_stale_record_when_the_crm_fails():
    client = crm()
    lookup_customer(CPF, client=client)
    cache.delete(keys.customer_key(CPF))
    client.fail = True
    result = lookup_customer(CPF, client=client)
    assert (result.status, result.customer, result.source) == (FOUND, RECORD, "stale")


def test_it_reports_an_error_when_the_crm_fails_without_a_stale_copy():
    assert lookup_customer(CPF, client=crm(fail=True)).status == ERROR


def test_it_answers_unknown_for_a_crm_without_records_and_caches_nothing(monkeypatch):
    monkeypatch.setattr(CountingClient, "fetch_customer", CrmClient.fetch_customer)
    result = lookup_customer(CPF, client=crm())
    assert (result.status, result.customer) == (UNKNOWN, None)
    assert cache.get(keys.customer_key(CPF)) is None


def test_refresh_forgets_the_record_too():
    client = crm()
    lookup_customer(CPF, client=client)
    lookup.refresh(CPF, client=CountingClient())
    assert cache.get(keys.customer_key(CPF)) is None


class SlowRecords(CountingClient):
    def fetch_customer(self, document, *, deadline):
        import time

        time.sleep(0.2)
        return super().fetch_customer(document, deadline=deadline)


def test_it_makes_one_crm_call_for_concurrent_misses():
    client = SlowRecords(records={CPF: dict(RECORD)})
    results = run_concurrently(10, lambda: lookup_customer(CPF, client=client))
    assert client.record_calls == [CPF]
    assert all(result.customer == RECORD for result in results)


@pytest.mark.live
def test_it_makes_one_crm_call_for_20_concurrent_misses_on_real_redis(live_redis_url):
    assert settings.CACHES["default"]["LOCATION"] == live_redis_url
    client = SlowRecords(records={CPF: dict(RECORD)})
    results = run_concurrently(20, lambda: lookup_customer(CPF, client=client))
    assert client.record_calls == [CPF]
    assert [result.status for result in results] == [FOUND] * 20
    assert 290 < cache.ttl(keys.customer_key(CPF)) <= 300
