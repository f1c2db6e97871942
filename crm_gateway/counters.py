"""The CRM cache's counters (hits, misses, fills, stale serves, errors), summed in process and
added to Redis about once a second, so a hit costs one Redis round trip; also per hour, for the
dashboard (hit_rate_between)."""

import threading
import time
from datetime import UTC, datetime, timedelta

from django.core.cache import cache

from crm_gateway import keys, redis_health

COUNTER_FLUSH_INTERVAL_S = 1.0


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
