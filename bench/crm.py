"""CRM gateway benchmark: prints figures (no assertions). Needs a real Redis:

    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/crm.py

1. Cache hit: lookup_points() on a cached document vs a raw redis-py GET of the same key
   (median, p95, ratio; target within 1.5x).
2. Single-flight: CRM calls under 50 concurrent misses of one document (target 1).
3. Time to context with the CRM at 8 s scaled 1:100 (80 ms): first and following lookups of a
   customer, known and unknown, against the old system's cache (5 min, non-empty results only).
Only this script's own keys in the REDIS_URL database are touched.
"""

import dataclasses
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
if not os.environ.get("REDIS_URL"):
    sys.exit("Set REDIS_URL (e.g. redis://127.0.0.1:6379/3): the benchmark measures the real Redis")

import django

django.setup()

import redis  # noqa: E402
from django.core.cache import cache  # noqa: E402

from conversations.runtime import RuntimeSnapshot  # noqa: E402
from crm_gateway import keys, lookup  # noqa: E402
from crm_gateway.breaker import CircuitBreaker  # noqa: E402
from crm_gateway.client import CrmClient  # noqa: E402

CRM_DELAY_S = 0.08  # 8 s scaled 1:100
RUNTIME = dataclasses.replace(
    RuntimeSnapshot(), crm_timeout_seconds=1, backoff_base_ms=1, backoff_cap_ms=20
)
KNOWN = "52998224725"
UNKNOWN = "86288366757"
POINTS = [
    {
        "id": "PI-1",
        "address": "Rua A, 1",
        "city": "São Paulo",
        "region": "Centro",
        "status": "ativo",
    }
]


class SlowCrm(CrmClient):
    def __init__(self):
        super().__init__(breaker=CircuitBreaker(threshold=10**6))
        self.calls = 0
        self._lock = threading.Lock()

    def fetch_points(self, document, *, deadline):
        with self._lock:
            self.calls += 1
        time.sleep(CRM_DELAY_S)
        return [dict(p) for p in POINTS] if document == KNOWN else None


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def bench_hit(rounds=5000):
    crm = SlowCrm()
    lookup.invalidate(KNOWN)
    lookup.lookup_points(KNOWN, client=crm)
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    raw_key = cache.make_key(keys.points_key(KNOWN))
    assert raw.get(raw_key) is not None
    ours, baseline = [], []
    # The engine's call: no client given, so the configured one is looked up too.
    for _ in range(200):  # warm connections and code paths
        lookup.lookup_points(KNOWN)
        raw.get(raw_key)
    for _ in range(rounds):
        started = time.perf_counter()
        lookup.lookup_points(KNOWN)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        raw.get(raw_key)
        baseline.append(time.perf_counter() - started)
    (om, op), (bm, bp) = percentiles(ours), percentiles(baseline)
    print(f"1. cache hit, {rounds} lookups (CRM calls during hits: {crm.calls - 1})")
    print(f"   {'':24}{'median':>10}{'p95':>10}")
    print(f"   {'lookup_points() hit':24}{om * 1e6:>8.0f}us{op * 1e6:>8.0f}us")
    print(f"   {'raw redis GET':24}{bm * 1e6:>8.0f}us{bp * 1e6:>8.0f}us")
    print(f"   ratio (median) {om / bm:.2f}x, (p95) {op / bp:.2f}x   target <= 1.5x")


def bench_single_flight(workers=50):
    crm = SlowCrm()
    lookup.invalidate(KNOWN)
    barrier = threading.Barrier(workers)
    statuses = []

    def run():
        barrier.wait()
        statuses.append(lookup.lookup_points(KNOWN, client=crm).status)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"2. {workers} concurrent misses of one document: {crm.calls} CRM call(s) (target 1)")
    print(
        f"   all answered: {statuses.count('found')}/{workers} found, "
        f"{elapsed * 1000:.0f} ms for all"
    )


def old_lookup(document, crm):
    """The system we replace: 5-minute cache of non-empty results only."""
    key = f"crm:bench-old:{document}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    points = crm.fetch_points(document, deadline=time.monotonic() + 12)
    if points:
        cache.set(key, points, timeout=300)
    return points


def bench_time_to_context(following=20):
    print(f"3. time to context, CRM at {CRM_DELAY_S * 1000:.0f} ms (8 s scaled 1:100), ms")
    print(f"   {'customer':10}{'system':8}{'first':>9}{'following (median)':>21}{'CRM calls':>11}")
    for name, document in (("known", KNOWN), ("unknown", UNKNOWN)):
        for system in ("old", "ours"):
            crm = SlowCrm()
            lookup.invalidate(document)
            cache.delete(f"crm:bench-old:{document}")
            times = []
            for _ in range(1 + following):
                started = time.perf_counter()
                if system == "ours":
                    lookup.lookup_points(document, client=crm)
                else:
                    old_lookup(document, crm)
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"   {name:10}{system:8}{times[0]:>9.1f}"
                f"{statistics.median(times[1:]):>21.2f}{crm.calls:>11}"
            )


def main():
    lookup.crm_settings = lambda: RUNTIME  # fixed knobs; the benchmark measures the cache path
    logging.getLogger("conversations.backoff").setLevel(logging.WARNING)
    print(
        f"Runtime: CRM timeout {RUNTIME.crm_timeout_seconds} s, single-flight backoff "
        f"{RUNTIME.backoff_base_ms}-{RUNTIME.backoff_cap_ms} ms (the 100-2000 ms default scaled 1:100)"
    )
    print(f"Redis: {os.environ['REDIS_URL']}")
    bench_hit()
    bench_single_flight()
    bench_time_to_context()
    for document in (KNOWN, UNKNOWN):
        lookup.invalidate(document)
        cache.delete(f"crm:bench-old:{document}")


if __name__ == "__main__":
    main()
