"""Installation points of a customer, through the cache (django-redis, JSON values).

- hit: no CRM call;
- miss: single-flight: one caller takes a short Redis lock and asks the CRM; the others wait
  on the backoff schedule (never past the CRM timeout) and read what it stored;
- non-empty answers are kept for the CRM cache TTL, empty or unknown ones for the negative TTL;
- a stale copy of the last non-empty answer (stale-copy TTL) is served when the CRM fails;
- Redis down: straight to the CRM; the cache is an optimisation, never a point of failure
  (and after a failure Redis is left alone for a few seconds, see redis_health).
Counters (hits, misses, fills, stale serves, errors) are summed in process and added to Redis
about once a second, so a hit costs one Redis round trip; also per hour, for the dashboard.
"""

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from redis.exceptions import LockError

from conversations import metrics
from conversations.backoff import wait_with_backoff
from conversations.masking import mask_document
from crm_gateway import keys, redis_health
from crm_gateway.adapters import get_crm_client
from crm_gateway.client import CrmClient, CrmError

logger = logging.getLogger(__name__)

FOUND = "found"  # installation points (fresh or stale)
EMPTY = "empty"  # known customer without points
UNKNOWN = "unknown"  # the CRM does not know the document
ERROR = "error"  # the CRM failed and there was no stale copy
# Waiters stop waiting this long after a filler's CRM call failed.
FAILED_MARK_TTL_S = 5
COUNTER_FLUSH_INTERVAL_S = 1.0


def crm_settings():
    """The runtime settings snapshot (TTLs, timeouts, backoff): one place for tests to patch."""
    from conversations.runtime import get_runtime

    return get_runtime()


@dataclass
class LookupResult:
    status: str  # FOUND, EMPTY, UNKNOWN or ERROR
    points: list[dict] = field(default_factory=list)
    source: str = "cache"  # cache, crm, stale, direct (Redis down) or none

    @property
    def crm_ok(self) -> bool:
        return self.status != ERROR


class _Counters:
    """Counts summed in process, added to Redis in one pipeline at most once a second."""

    def __init__(self):
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()

    def count(self, name: str) -> None:
        with self._lock:
            self._pending[name] = self._pending.get(name, 0) + 1
            due = time.monotonic() - self._flushed_at >= COUNTER_FLUSH_INTERVAL_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        if not pending or not redis_health.available():
            return  # best effort: counts are lost while Redis is down
        try:
            client = cache.client.get_client(write=True)
            pipe = client.pipeline(transaction=False)
            hour = datetime.now(UTC)
            for name, amount in pending.items():
                pipe.incrby(cache.make_key(keys.counter_key(name)), amount)
                hourly = cache.make_key(keys.hourly_counter_key(name, hour))
                pipe.incrby(hourly, amount)
                pipe.expire(hourly, keys.HOURLY_COUNTER_TTL_S)
            pipe.execute()
        except keys.REDIS_ERRORS as exc:
            redis_health.mark_down(exc)

    def read(self) -> dict[str, int]:
        self.flush()
        stored = cache.get_many([keys.counter_key(name) for name in keys.COUNTERS])
        return {name: int(stored.get(keys.counter_key(name)) or 0) for name in keys.COUNTERS}

    def reset(self) -> None:
        with self._lock:
            self._pending = {}
        cache.delete_many([keys.counter_key(name) for name in keys.COUNTERS])


counters = _Counters()


def _log(document: str, outcome: str, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "CRM lookup %s: %s in %.1f ms",
            mask_document(document),
            outcome,
            (time.monotonic() - started) * 1000,
        )


def _from_cached(value: dict) -> LookupResult:
    return LookupResult(value["status"], list(value.get("points") or []), "cache")


def lookup_points(document: str, *, client: CrmClient | None = None) -> LookupResult:
    """The installation points of a valid, compact document. Never raises for CRM or Redis
    failures, and returns within the CRM timeout (plus Redis round trips)."""
    started = time.monotonic()
    runtime = crm_settings()
    deadline = started + runtime.crm_timeout_seconds
    client = client or get_crm_client()
    if not redis_health.available():
        return _direct(document, client, deadline, started, None)
    try:
        cached = cache.get(keys.points_key(document))
    except keys.REDIS_ERRORS as exc:
        return _direct(document, client, deadline, started, exc)
    if cached is not None:
        counters.count("hits")
        negative = cached.get("status") != FOUND
        metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="negative" if negative else "hit")
        _log(document, "hit", started)
        return _from_cached(cached)
    counters.count("misses")
    metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="miss")
    try:
        lock = cache.lock(
            keys.fill_lock_key(document),
            # Freed on its own if the filler dies; a live filler is done by the CRM deadline.
            timeout=runtime.crm_timeout_seconds + 1,
        )
        acquired = lock.acquire(blocking=False)
    except keys.REDIS_ERRORS as exc:
        return _direct(document, client, deadline, started, exc)
    try:
        if acquired:
            return _fill(document, client, runtime, deadline, started)
        return _wait_for_filler(document, runtime, deadline, started)
    except keys.REDIS_ERRORS as exc:
        # Redis failed half-way; a caller that still has time goes to the CRM itself.
        return _direct(document, client, deadline, started, exc)
    finally:
        if acquired:
            try:
                lock.release()
            except (LockError, *keys.REDIS_ERRORS):
                pass  # expired or Redis gone: nothing to release


def _fill(document, client, runtime, deadline, started) -> LookupResult:
    # Someone may have filled between our miss and our lock.
    cached = cache.get(keys.points_key(document))
    if cached is not None:
        _log(document, "filled meanwhile", started)
        return _from_cached(cached)
    try:
        points = client.installation_points(document, timeout=max(0.0, deadline - time.monotonic()))
    except CrmError:
        counters.count("errors")
        _safe_set(keys.failed_key(document), 1, FAILED_MARK_TTL_S)
        return _stale_or_error(document, started)
    counters.count("fills")
    result = _store(document, points, runtime)
    _log(document, f"filled ({result.status})", started)
    return result


def _store(document, points, runtime) -> LookupResult:
    """Cache the CRM's answer and return it; a Redis failure here loses only the caching."""
    if points:
        result = LookupResult(FOUND, points, "crm")
        writes = [
            (keys.points_key(document), runtime.crm_cache_ttl_seconds),
            (keys.stale_key(document), runtime.crm_stale_ttl_seconds),
        ]
        stale_outdated = False
    else:
        result = LookupResult(UNKNOWN if points is None else EMPTY, [], "crm")
        writes = [(keys.points_key(document), runtime.crm_negative_ttl_seconds)]
        stale_outdated = True  # the CRM no longer lists those points
    value = {"status": result.status, "points": result.points}
    try:
        for key, ttl in writes:
            cache.set(key, value, timeout=ttl)
        cache.delete_many(
            [keys.failed_key(document)] + ([keys.stale_key(document)] if stale_outdated else [])
        )
    except keys.REDIS_ERRORS as exc:
        redis_health.mark_down(exc)
    return result


def _wait_for_filler(document, runtime, deadline, started) -> LookupResult:
    seen = {}

    def stored() -> bool:
        seen["value"] = cache.get(keys.points_key(document))
        return seen["value"] is not None or cache.get(keys.failed_key(document)) is not None

    timeout_s = min(runtime.lock_wait_timeout_seconds, max(0.0, deadline - time.monotonic()))
    wait_with_backoff(
        stored,
        base_ms=runtime.backoff_base_ms,
        cap_ms=runtime.backoff_cap_ms,
        timeout_s=timeout_s,
        what="CRM single-flight wait",
    )
    if seen.get("value") is not None:
        _log(document, "read the filler's answer", started)
        return _from_cached(seen["value"])
    return _stale_or_error(document, started)


def _stale_or_error(document, started) -> LookupResult:
    stale = _safe_get(keys.stale_key(document))
    if stale is not None:
        counters.count("stale_serves")
        metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="stale")
        _log(document, "served stale copy", started)
        return LookupResult(FOUND, list(stale.get("points") or []), "stale")
    _log(document, "no CRM data", started)
    metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="error")
    return LookupResult(ERROR, [], "none")


def _direct(document, client, deadline, started, exc) -> LookupResult:
    """Redis failed (`exc`) or failed moments ago (None): ask the CRM without the cache."""
    metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="bypass")
    if exc is not None:
        logger.warning("CRM cache unavailable (%s); asking the CRM directly", type(exc).__name__)
        redis_health.mark_down(exc)
    try:
        points = client.installation_points(document, timeout=max(0.0, deadline - time.monotonic()))
    except CrmError:
        counters.count("errors")
        _log(document, "Redis and CRM failed", started)
        return LookupResult(ERROR, [], "none")
    _log(document, "direct", started)
    if points:
        return LookupResult(FOUND, points, "direct")
    return LookupResult(UNKNOWN if points is None else EMPTY, [], "direct")


def _safe_get(key):
    try:
        return cache.get(key)
    except keys.REDIS_ERRORS as exc:
        redis_health.mark_down(exc)
        return None


def _safe_set(key, value, timeout) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except keys.REDIS_ERRORS as exc:
        redis_health.mark_down(exc)


def invalidate(document: str) -> int:
    """Forget the cached answers (fresh, stale, failure mark) of one document."""
    return cache.delete_many(keys.document_keys(document)) or 0


def refresh(document: str, *, client: CrmClient | None = None) -> LookupResult:
    """Invalidate, then look up again (the admin's "refresh CRM data")."""
    with contextlib.suppress(*keys.REDIS_ERRORS):  # the lookup then goes to the CRM directly
        invalidate(document)
    return lookup_points(document, client=client)


def clear() -> int:
    """Remove every cached CRM answer (not the counters or the breaker state)."""
    return cache.delete_pattern(keys.DATA_PATTERN) or 0


def hit_rate_between(since: datetime, until: datetime) -> tuple[int, int]:
    """(hits, lookups) counted in the hours from since's to until's (UTC hours)."""
    counters.flush()
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    names = []
    while hour <= until:
        names += [keys.hourly_counter_key(n, hour) for n in ("hits", "misses")]
        hour += timedelta(hours=1)
    stored = cache.get_many(names)
    hits = sum(int(v or 0) for k, v in stored.items() if ":hits:" in k)
    misses = sum(int(v or 0) for k, v in stored.items() if ":misses:" in k)
    return hits, hits + misses


def stats() -> dict:
    counts = counters.read()
    lookups = counts["hits"] + counts["misses"]
    counts["hit_rate"] = counts["hits"] / lookups if lookups else 0.0
    return counts
