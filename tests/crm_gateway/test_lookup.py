import logging
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from crm_gateway import keys, lookup, redis_health
from crm_gateway.lookup import EMPTY, ERROR, FOUND, UNKNOWN, lookup_points
from tests.conftest import unavailable
from tests.fakes.caches import DOWN_CACHES, redis_caches
from tests.fakes.crm_api import POINT, CountingClient, use_runtime

CPF = "52998224725"


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


def test_it_calls_the_crm_on_a_miss_and_not_on_a_hit():
    client = CountingClient()
    first = lookup_points(CPF, client=client)
    second = lookup_points(CPF, client=client)
    assert (first.status, first.points, first.source) == (FOUND, [POINT], "crm")
    assert (second.status, second.points, second.source) == (FOUND, [POINT], "cache")
    assert client.calls == [CPF]


def test_it_keeps_a_non_empty_answer_for_the_cache_ttl(runtime):
    lookup_points(CPF, client=CountingClient())
    assert 290 < cache.ttl(keys.points_key(CPF)) <= 300
    assert 3590 < cache.ttl(keys.stale_key(CPF)) <= 3600


@pytest.mark.parametrize(("customers", "status"), [({}, UNKNOWN), ({CPF: []}, EMPTY)])
def test_it_keeps_unknown_and_empty_answers_for_the_negative_ttl(customers, status):
    client = CountingClient(customers)
    assert lookup_points(CPF, client=client).status == status
    result = lookup_points(CPF, client=client)
    assert (result.status, result.points, result.source) == (status, [], "cache")
    assert client.calls == [CPF]
    assert 50 < cache.ttl(keys.points_key(CPF)) <= 60
    assert cache.get(keys.stale_key(CPF)) is None


def test_it_asks_again_once_the_entry_expires(monkeypatch):
    use_runtime(monkeypatch, crm_cache_ttl_seconds=1, crm_timeout_seconds=2)
    client = CountingClient()
    lookup_points(CPF, client=client)
    time.sleep(1.1)
    lookup_points(CPF, client=client)
    assert client.calls == [CPF, CPF]


def test_it_serves_the_stale_copy_when_the_crm_fails():
    client = CountingClient()
    lookup_points(CPF, client=client)
    cache.delete(keys.points_key(CPF))  # the fresh entry expired
    client.fail = True
    result = lookup_points(CPF, client=client)
    assert (result.status, result.points, result.source) == (FOUND, [POINT], "stale")
    assert result.crm_ok
    assert lookup.stats()["stale_serves"] == 1


def test_it_reports_an_error_when_the_crm_fails_without_a_stale_copy():
    result = lookup_points(CPF, client=CountingClient(fail=True))
    assert (result.status, result.points, result.crm_ok) == (ERROR, [], False)
    assert cache.get(keys.points_key(CPF)) is None
    assert lookup.stats()["errors"] == 1


def test_it_drops_the_stale_copy_when_the_crm_no_longer_lists_points():
    client = CountingClient()
    lookup_points(CPF, client=client)
    lookup.invalidate(CPF)
    client.customers[CPF] = []
    assert lookup_points(CPF, client=client).status == EMPTY
    assert cache.get(keys.stale_key(CPF)) is None


def test_it_returns_within_the_crm_timeout_when_the_crm_hangs(monkeypatch):
    use_runtime(monkeypatch, crm_timeout_seconds=1)
    started = time.monotonic()
    result = lookup_points(CPF, client=CountingClient(delay_s=5))
    assert result.status == ERROR
    assert time.monotonic() - started < 1.5


def test_it_waits_for_the_filler_and_reads_what_it_stored():
    client = CountingClient()
    lock = cache.lock(keys.fill_lock_key(CPF), timeout=5, thread_local=False)
    assert lock.acquire(blocking=False)

    def filler():
        time.sleep(0.2)
        cache.set(keys.points_key(CPF), {"status": FOUND, "points": [POINT]}, timeout=60)
        lock.release()

    thread = threading.Thread(target=filler)
    thread.start()
    result = lookup_points(CPF, client=client)
    thread.join()
    assert (result.status, result.points) == (FOUND, [POINT])
    assert client.calls == []


def test_it_stops_waiting_when_the_filler_failed_and_serves_the_stale_copy():
    cache.set(keys.stale_key(CPF), {"status": FOUND, "points": [POINT]}, timeout=60)
    lock = cache.lock(keys.fill_lock_key(CPF), timeout=5, thread_local=False)
    assert lock.acquire(blocking=False)
    cache.set(keys.failed_key(CPF), 1, timeout=5)
    started = time.monotonic()
    result = lookup_points(CPF, client=CountingClient())
    assert (result.status, result.source) == (FOUND, "stale")
    assert time.monotonic() - started < 0.5
    lock.release()


def test_it_never_waits_for_a_filler_past_the_crm_timeout(monkeypatch):
    use_runtime(monkeypatch, crm_timeout_seconds=1, lock_wait_timeout_seconds=60)
    lock = cache.lock(keys.fill_lock_key(CPF), timeout=5, thread_local=False)
    assert lock.acquire(blocking=False)
    started = time.monotonic()
    result = lookup_points(CPF, client=CountingClient())
    assert result.status == ERROR
    assert time.monotonic() - started < 1.5
    lock.release()


def test_it_makes_one_crm_call_for_concurrent_misses_on_the_embedded_cache():
    client = CountingClient(delay_s=0.2)
    results = run_concurrently(20, lambda: lookup_points(CPF, client=client))
    assert client.calls == [CPF]
    assert all(result.points == [POINT] for result in results)


@pytest.mark.live
def test_it_makes_one_crm_call_for_20_concurrent_misses_on_real_redis(live_redis_url):
    assert settings.CACHES["default"]["LOCATION"] == live_redis_url  # the real Redis
    client = CountingClient(delay_s=0.3)
    results = run_concurrently(20, lambda: lookup_points(CPF, client=client))
    assert client.calls == [CPF]
    assert [result.status for result in results] == [FOUND] * 20
    stats = lookup.stats()
    assert stats["misses"] + stats["hits"] == 20 and stats["fills"] == 1


def run_concurrently(count, function):
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        barrier.wait()
        results[index] = function()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_it_counts_hits_misses_and_fills():
    client = CountingClient()
    for _ in range(3):
        lookup_points(CPF, client=client)
    stats = lookup.stats()
    assert (stats["hits"], stats["misses"], stats["fills"], stats["errors"]) == (2, 1, 1, 0)
    assert stats["hit_rate"] == pytest.approx(2 / 3)


def test_it_logs_each_lookup_with_the_document_masked(caplog):
    with caplog.at_level(logging.DEBUG, logger="crm_gateway"):
        lookup_points(CPF, client=CountingClient())
        lookup_points(CPF, client=CountingClient())
    assert "***.982.247-**" in caplog.text
    assert "hit" in caplog.text
    assert CPF not in caplog.text


def test_it_clears_only_cached_crm_answers():
    client = CountingClient()
    lookup_points(CPF, client=client)
    cache.set("conversations:other", 1)
    assert lookup.clear() >= 2
    assert cache.get(keys.points_key(CPF)) is None
    assert cache.get("conversations:other") == 1
    assert lookup.stats()["misses"] == 1


def test_it_refreshes_one_document():
    client = CountingClient()
    lookup_points(CPF, client=client)
    client.customers[CPF] = [POINT | {"status": "suspenso"}]
    result = lookup.refresh(CPF, client=client)
    assert result.points[0]["status"] == "suspenso" and len(client.calls) == 2


@override_settings(CACHES=DOWN_CACHES)
def test_it_goes_to_the_crm_directly_when_redis_is_down(caplog):
    client = CountingClient()
    with caplog.at_level(logging.WARNING, logger="crm_gateway.lookup"):
        first = lookup_points(CPF, client=client)
        second = lookup_points(CPF, client=client)
    assert (first.status, first.points, first.source) == (FOUND, [POINT], "direct")
    assert second.source == "direct"
    assert client.calls == [CPF, CPF]
    assert "CRM cache unavailable" in caplog.text


@override_settings(CACHES=DOWN_CACHES)
@pytest.mark.parametrize(("customers", "status"), [({}, UNKNOWN), ({CPF: []}, EMPTY)])
def test_it_reports_unknown_and_empty_when_redis_is_down(customers, status):
    assert lookup_points(CPF, client=CountingClient(customers)).status == status


@override_settings(CACHES=DOWN_CACHES)
def test_it_reports_an_error_when_redis_and_the_crm_are_down():
    assert lookup_points(CPF, client=CountingClient(fail=True)).status == ERROR


def test_it_goes_to_the_crm_directly_when_the_lock_fails(monkeypatch):
    def broken_lock(*args, **kwargs):
        raise RedisConnectionError("gone")

    monkeypatch.setattr(cache, "lock", broken_lock)
    client = CountingClient()
    assert lookup_points(CPF, client=client).source == "direct"
    assert client.calls == [CPF]


def test_it_still_answers_when_storing_the_answer_fails(monkeypatch):
    def broken_set(*args, **kwargs):
        raise RedisConnectionError("gone")

    monkeypatch.setattr(cache, "set", broken_set)
    client = CountingClient()
    result = lookup_points(CPF, client=client)
    assert (result.status, result.source) == (FOUND, "crm")
    assert client.calls == [CPF]


@pytest.fixture
def own_redis():
    """A Redis server of our own on a free port, so the test can stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)


def test_it_survives_a_real_redis_that_stops_mid_test(own_redis):
    process, port = own_redis
    client = CountingClient()
    with override_settings(CACHES=redis_caches(f"redis://127.0.0.1:{port}/0")):
        assert lookup_points(CPF, client=client).source == "crm"
        assert lookup_points(CPF, client=client).source == "cache"
        process.kill()
        process.wait(timeout=5)
        result = lookup_points(CPF, client=client)
        assert (result.status, result.points, result.source) == (FOUND, [POINT], "direct")
        assert client.calls == [CPF, CPF]
        assert lookup.refresh(CPF, client=client).source == "direct"


@pytest.mark.live
def test_it_caches_fresh_negative_and_stale_answers_on_real_redis(live_redis_url, monkeypatch):
    assert settings.CACHES["default"]["LOCATION"] == live_redis_url
    client = CountingClient({CPF: [POINT], "11144477735": []})
    assert lookup_points(CPF, client=client).source == "crm"
    assert lookup_points(CPF, client=client).source == "cache"
    assert lookup_points("11144477735", client=client).status == EMPTY
    assert 50 < cache.ttl(keys.points_key("11144477735")) <= 60
    cache.delete(keys.points_key(CPF))
    client.fail = True
    assert lookup_points(CPF, client=client).source == "stale"
    assert len(client.calls) == 3
    stats = lookup.stats()
    assert (stats["hits"], stats["fills"], stats["stale_serves"], stats["errors"]) == (1, 2, 1, 1)


def test_it_leaves_a_failing_redis_alone_for_a_moment(monkeypatch):
    monkeypatch.setattr(redis_health, "RETRY_AFTER_S", 0.2)
    real_get = cache.get
    broken = [True]
    calls = []

    def flaky_get(*args, **kwargs):
        calls.append(args)
        if broken[0]:
            raise RedisConnectionError("hung")
        return real_get(*args, **kwargs)

    monkeypatch.setattr(cache, "get", flaky_get)
    client = CountingClient()
    assert lookup_points(CPF, client=client).source == "direct"
    assert len(calls) == 1
    assert lookup_points(CPF, client=client).source == "direct"
    assert len(calls) == 1  # not tried again within RETRY_AFTER_S
    time.sleep(0.25)
    broken[0] = False
    assert lookup_points(CPF, client=client).source == "crm"
    assert lookup_points(CPF, client=client).source == "cache"


def test_it_stays_within_the_crm_timeout_when_redis_hangs(own_redis, monkeypatch):
    use_runtime(monkeypatch, crm_timeout_seconds=2)
    process, port = own_redis
    client = CountingClient(delay_s=1)
    with override_settings(CACHES=redis_caches(f"redis://127.0.0.1:{port}/0")):
        assert lookup_points(CPF, client=client).source == "crm"
        cache.delete(keys.points_key(CPF))
        process.send_signal(signal.SIGSTOP)  # Redis hangs: every command waits for its timeout
        try:
            started = time.monotonic()
            result = lookup_points(CPF, client=client)
            elapsed = time.monotonic() - started
        finally:
            process.send_signal(signal.SIGCONT)
    assert (result.status, result.source) == (FOUND, "direct")
    assert elapsed < 2 + 0.6  # the CRM budget plus one Redis socket timeout (0.5 s)
