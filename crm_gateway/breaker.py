"""Circuit breaker in front of the CRM, shared by every worker through Redis (django-redis).

    closed --(THRESHOLD failures in a row)--> open --(cool-down passes)--> half-open
    half-open: exactly one trial call; it succeeds -> closed, it fails -> open again

While Redis is down the same logic runs on in-process state, so a dead CRM is still left alone
by this process. Every transition is logged; `state()` feeds the admin and `crm_cache stats`.
"""

import logging
import threading
import time
from typing import Any

from django.core.cache import cache

from crm_gateway import keys, redis_health

logger = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class _LocalStore:
    """The few cache operations the breaker needs, in this process, with expiry."""

    def __init__(self, clock=time.monotonic):
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key):
        value, expires = self._data.get(key, (None, None))
        if expires is not None and expires <= self._clock():
            self._data.pop(key, None)
            return None
        return value

    def get(self, key):
        with self._lock:
            return self._live(key)

    def set(self, key, value, timeout):
        with self._lock:
            self._data[key] = (value, None if timeout is None else self._clock() + timeout)

    def add(self, key, value, timeout) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._clock() + timeout)
            return True

    def incr(self, key, timeout) -> int:
        with self._lock:
            if self._live(key) is None:
                self._data[key] = (1, self._clock() + timeout)
                return 1
            value, expires = self._data[key]
            self._data[key] = (value + 1, expires)
            return value + 1

    def delete(self, *names):
        with self._lock:
            for key in names:
                self._data.pop(key, None)


class _CacheStore:
    def get(self, key):
        return cache.get(key)

    def set(self, key, value, timeout):
        cache.set(key, value, timeout=timeout)

    def add(self, key, value, timeout) -> bool:
        return cache.add(key, value, timeout=timeout)

    def incr(self, key, timeout) -> int:
        value = cache.incr(key, ignore_key_check=True)
        if value == 1:
            cache.pexpire(key, int(timeout * 1000))  # the window starts at the first failure
        return value

    def delete(self, *names):
        cache.delete_many(list(names))


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        failure_window_s: float = 60.0,
        probe_timeout_s: float = 30.0,
    ):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failure_window_s = failure_window_s
        # A trial call that never reports back (its worker died) frees the slot after this.
        self.probe_timeout_s = probe_timeout_s
        self._shared = _CacheStore()
        self._local = _LocalStore()
        self._redis_ok = True

    def _run(self, operation: str, *args):
        """Run a store operation on Redis, or on the in-process state when Redis fails."""
        if not redis_health.available():
            return getattr(self._local, operation)(*args)
        try:
            result = getattr(self._shared, operation)(*args)
        except keys.REDIS_ERRORS as exc:
            redis_health.mark_down(exc)
            if self._redis_ok:
                logger.warning(
                    "CRM circuit breaker: Redis unavailable (%s); using in-process state",
                    type(exc).__name__,
                )
            self._redis_ok = False
            return getattr(self._local, operation)(*args)
        if not self._redis_ok:
            logger.info("CRM circuit breaker: Redis is back; using shared state")
            self._redis_ok = True
        return result

    def allow(self) -> bool:
        """May a CRM call go out now? In half-open, True for exactly one caller."""
        if self._run("get", keys.BREAKER_OPEN_KEY):
            return False
        if not self._run("get", keys.BREAKER_TRIPPED_KEY):
            return True
        if self._run("add", keys.BREAKER_PROBE_KEY, 1, self.probe_timeout_s):
            logger.info("CRM circuit breaker half-open: trying one call")
            return True
        return False

    def record_success(self) -> None:
        if self._run("get", keys.BREAKER_TRIPPED_KEY):
            logger.info("CRM circuit breaker closed: the CRM answered")
        self._run(
            "delete",
            keys.BREAKER_TRIPPED_KEY,
            keys.BREAKER_PROBE_KEY,
            keys.BREAKER_OPEN_KEY,
            keys.BREAKER_FAILURES_KEY,
        )

    def record_failure(self) -> None:
        if self._run("get", keys.BREAKER_TRIPPED_KEY):
            if not self._run("get", keys.BREAKER_OPEN_KEY):
                logger.warning(
                    "CRM circuit breaker re-opened: the trial call failed; no calls for %.0f s",
                    self.cooldown_s,
                )
                self._open()
            return
        failures = self._run("incr", keys.BREAKER_FAILURES_KEY, self.failure_window_s)
        if failures >= self.threshold:
            logger.warning(
                "CRM circuit breaker opened after %d failures in a row; no calls for %.0f s",
                failures,
                self.cooldown_s,
            )
            self._open()

    def _open(self) -> None:
        self._run("set", keys.BREAKER_OPEN_KEY, 1, self.cooldown_s)
        self._run("set", keys.BREAKER_TRIPPED_KEY, 1, None)
        self._run("delete", keys.BREAKER_PROBE_KEY, keys.BREAKER_FAILURES_KEY)

    def state(self) -> str:
        if self._run("get", keys.BREAKER_OPEN_KEY):
            return OPEN
        if self._run("get", keys.BREAKER_TRIPPED_KEY):
            return HALF_OPEN
        return CLOSED


# The breaker every CRM client shares unless given its own.
crm_breaker = CircuitBreaker()
