"""Installation points and the customer record (name, phones), through the cache (django-redis, JSON values).

- hit: no CRM call;
- miss: single-flight: one caller takes a short Redis lock and asks the CRM; the others wait
  on the backoff schedule (never past the CRM timeout) and read what it stored;
- non-empty answers are kept for the CRM cache TTL, empty or unknown ones for the negative TTL;
- a stale copy of the last non-empty answer (stale-copy TTL) is served when the CRM fails;
- Redis down: straight to the CRM; the cache is an optimisation, never a point of failure
  (and after a failure Redis is left alone for a few seconds, see redis_health).
Counters (hits, misses, fills, stale serves, errors, also per hour for the dashboard):
crm_gateway.counters.
"""

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.cache import cache
from redis.exceptions import LockError

from conversations import metrics
from conversations.backoff import wait_with_backoff
from conversations.masking import mask_document
from crm_gateway import keys, redis_health
from crm_gateway.adapters import get_crm_client
from crm_gateway.client import CrmClient, CrmError, CrmNotSupported
from crm_gateway.counters import (  # noqa: F401 (hit_rate_between, stats: the cache's figures)
    counters,
    hit_rate_between,
    stats,
)

logger = logging.getLogger(__name__)

FOUND = "found"  # installation points (fresh or stale)
EMPTY = "empty"  # known customer without points
UNKNOWN = "unknown"  # the CRM does not know the document
ERROR = "error"  # the CRM failed and there was no stale copy
# Waiters stop waiting this long after a filler's CRM call failed.
FAILED_MARK_TTL_S = 5


def crm_settings():
    """The runtime settings snapshot (TTLs, timeouts, backoff): one place for tests to patch."""
    from conversations.runtime import get_runtime

    return get_runtime()


@dataclass
class LookupResult:
    status: str  # FOUND, EMPTY, UNKNOWN or ERROR
    points: list[dict] = field(default_factory=list)
    source: str = "cache"  # cache, crm, stale, direct (Redis down) or none
    customer: dict | None = None  # lookup_customer's FOUND answer: {"name", "phones"}

    @property
    def crm_ok(self) -> bool:
        return self.status != ERROR


@dataclass(frozen=True)
class _Spec:
    """What is looked up: its keys and the CrmClient method that asks the CRM."""

    fresh_key: Callable[[str], str]
    stale_key: Callable[[str], str]
    failed_key: Callable[[str], str]
    lock_key: Callable[[str], str]
    method: str


POINTS = _Spec(
    fresh_key=keys.points_key,
    stale_key=keys.stale_key,
    failed_key=keys.failed_key,
    lock_key=keys.fill_lock_key,
    method="installation_points",
)
CUSTOMER = _Spec(
    fresh_key=keys.customer_key,
    stale_key=keys.customer_stale_key,
    failed_key=keys.customer_failed_key,
    lock_key=keys.customer_fill_lock_key,
    method="customer",
)


def _result(spec: _Spec, answer, source: str) -> LookupResult:
    """The CRM's answer as a LookupResult: a list of points, a customer record, or None."""
    if spec is CUSTOMER:
        if answer is None:
            return LookupResult(UNKNOWN, [], source)
        return LookupResult(FOUND, [], source, customer=answer)
    if answer:
        return LookupResult(FOUND, answer, source)
    return LookupResult(UNKNOWN if answer is None else EMPTY, [], source)


def _value(spec: _Spec, result: LookupResult) -> dict:
    if spec is CUSTOMER:
        return {"status": result.status, "customer": result.customer}
    return {"status": result.status, "points": result.points}


def _ask(spec: _Spec, client: CrmClient, document: str, deadline: float):
    timeout = max(0.0, deadline - time.monotonic())
    return getattr(client, spec.method)(document, timeout=timeout)


def _log(document: str, outcome: str, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "CRM lookup %s: %s in %.1f ms",
            mask_document(document),
            outcome,
            (time.monotonic() - started) * 1000,
        )


def _from_cached(value: dict, source: str = "cache") -> LookupResult:
    points = list(value.get("points") or [])
    return LookupResult(value["status"], points, source, customer=value.get("customer"))


def lookup_points(document: str, *, client: CrmClient | None = None) -> LookupResult:
    """The installation points of a valid, compact document. Never raises for CRM or Redis
    failures, and returns within the CRM timeout (plus Redis round trips)."""
    return _lookup(POINTS, document, client)


def lookup_customer(document: str, *, client: CrmClient | None = None) -> LookupResult:
    """The customer record ({"name", "phones"} in .customer when FOUND), cached like the points
    (same TTLs, single-flight, stale copy on failure). A CRM that gives no records answers
    UNKNOWN, so nobody is ever checked against it."""
    return _lookup(CUSTOMER, document, client)


def _lookup(spec: _Spec, document: str, client: CrmClient | None) -> LookupResult:
    started = time.monotonic()
    runtime = crm_settings()
    deadline = started + runtime.crm_timeout_seconds
    client = client or get_crm_client()
    if not redis_health.available():
        return _direct(spec, document, client, deadline, started, None)
    try:
        cached = cache.get(spec.fresh_key(document))
    except keys.REDIS_ERRORS as exc:
        return _direct(spec, document, client, deadline, started, exc)
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
            spec.lock_key(document),
            # Freed on its own if the filler dies; a live filler is done by the CRM deadline.
            timeout=runtime.crm_timeout_seconds + 1,
        )
        acquired = lock.acquire(blocking=False)
    except keys.REDIS_ERRORS as exc:
        return _direct(spec, document, client, deadline, started, exc)
    try:
        if acquired:
            return _fill(spec, document, client, runtime, deadline, started)
        return _wait_for_filler(spec, document, runtime, deadline, started)
    except keys.REDIS_ERRORS as exc:
        # Redis failed half-way; a caller that still has time goes to the CRM itself.
        return _direct(spec, document, client, deadline, started, exc)
    finally:
        if acquired:
            try:
                lock.release()
            except (LockError, *keys.REDIS_ERRORS):
                pass  # expired or Redis gone: nothing to release


def _fill(spec, document, client, runtime, deadline, started) -> LookupResult:
    # Someone may have filled between our miss and our lock.
    cached = cache.get(spec.fresh_key(document))
    if cached is not None:
        _log(document, "filled meanwhile", started)
        return _from_cached(cached)
    try:
        answer = _ask(spec, client, document, deadline)
    except CrmNotSupported:
        return LookupResult(UNKNOWN, [], "none")
    except CrmError:
        counters.count("errors")
        _safe_set(spec.failed_key(document), 1, FAILED_MARK_TTL_S)
        return _stale_or_error(spec, document, started)
    counters.count("fills")
    result = _store(spec, document, _result(spec, answer, "crm"), runtime)
    _log(document, f"filled ({result.status})", started)
    return result


def _store(spec, document, result, runtime) -> LookupResult:
    """Cache the CRM's answer and return it; a Redis failure here loses only the caching."""
    if result.status == FOUND:
        writes = [
            (spec.fresh_key(document), runtime.crm_cache_ttl_seconds),
            (spec.stale_key(document), runtime.crm_stale_ttl_seconds),
        ]
        stale_outdated = False
    else:
        writes = [(spec.fresh_key(document), runtime.crm_negative_ttl_seconds)]
        stale_outdated = True  # the CRM no longer lists what the stale copy holds
    value = _value(spec, result)
    try:
        for key, ttl in writes:
            cache.set(key, value, timeout=ttl)
        cache.delete_many(
            [spec.failed_key(document)] + ([spec.stale_key(document)] if stale_outdated else [])
        )
    except keys.REDIS_ERRORS as exc:
        redis_health.mark_down(exc)
    return result


def _wait_for_filler(spec, document, runtime, deadline, started) -> LookupResult:
    seen = {}

    def stored() -> bool:
        seen["value"] = cache.get(spec.fresh_key(document))
        return seen["value"] is not None or cache.get(spec.failed_key(document)) is not None

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
    return _stale_or_error(spec, document, started)


def _stale_or_error(spec, document, started) -> LookupResult:
    stale = _safe_get(spec.stale_key(document))
    if stale is not None:
        counters.count("stale_serves")
        metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="stale")
        _log(document, "served stale copy", started)
        return _from_cached(stale, "stale")
    _log(document, "no CRM data", started)
    metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="error")
    return LookupResult(ERROR, [], "none")


def _direct(spec, document, client, deadline, started, exc) -> LookupResult:
    """Redis failed (`exc`) or failed moments ago (None): ask the CRM without the cache."""
    metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="bypass")
    if exc is not None:
        logger.warning("CRM cache unavailable (%s); asking the CRM directly", type(exc).__name__)
        redis_health.mark_down(exc)
    try:
        answer = _ask(spec, client, document, deadline)
    except CrmNotSupported:
        return LookupResult(UNKNOWN, [], "none")
    except CrmError:
        counters.count("errors")
        _log(document, "Redis and CRM failed", started)
        return LookupResult(ERROR, [], "none")
    _log(document, "direct", started)
    return _result(spec, answer, "direct")


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
