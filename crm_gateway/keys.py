"""Every Redis key of the CRM gateway, built in one place, all under the `crm:` prefix.

Documents are hashed into the keys so that listing Redis keys never shows a CPF/CNPJ.
django-redis adds the cache's own KEY_PREFIX and version around these.
"""

import hashlib

from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

PREFIX = "crm:"
# Cached CRM answers (what `crm_cache clear` removes); counters and breaker state live elsewhere.
DATA_PREFIX = f"{PREFIX}data:"
DATA_PATTERN = f"{DATA_PREFIX}*"
COUNTERS = ("hits", "misses", "fills", "stale_serves", "errors")

# What a failing Redis raises through django-redis (get/set/incr) or redis-py (locks).
REDIS_ERRORS = (ConnectionInterrupted, RedisError, ConnectionError, OSError)


def _digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()[:32]


def points_key(document: str) -> str:
    """The fresh answer: {"status": "found"|"empty"|"unknown", "points": [...]}."""
    return f"{DATA_PREFIX}points:{_digest(document)}"


def stale_key(document: str) -> str:
    """The last non-empty answer, kept longer and served when the CRM fails."""
    return f"{DATA_PREFIX}stale:{_digest(document)}"


def failed_key(document: str) -> str:
    """Set for a moment by a filler whose CRM call failed, so its waiters stop waiting."""
    return f"{DATA_PREFIX}failed:{_digest(document)}"


def fill_lock_key(document: str) -> str:
    return f"{PREFIX}lock:{_digest(document)}"


def customer_key(document: str) -> str:
    """The customer record: {"status": "found"|"unknown", "customer": {"name", "phones"}}."""
    return f"{DATA_PREFIX}customer:{_digest(document)}"


def customer_stale_key(document: str) -> str:
    return f"{DATA_PREFIX}customer-stale:{_digest(document)}"


def customer_failed_key(document: str) -> str:
    return f"{DATA_PREFIX}customer-failed:{_digest(document)}"


def customer_fill_lock_key(document: str) -> str:
    return f"{PREFIX}lock:customer:{_digest(document)}"


def document_keys(document: str) -> list[str]:
    return [
        points_key(document),
        stale_key(document),
        failed_key(document),
        customer_key(document),
        customer_stale_key(document),
        customer_failed_key(document),
    ]


def counter_key(name: str) -> str:
    if name not in COUNTERS:
        raise ValueError(f"unknown CRM counter {name!r}")
    return f"{PREFIX}stats:{name}"


# The same counts per hour (UTC), kept HOURLY_COUNTER_TTL_S: the dashboard's hit rate per period.
HOURLY_COUNTER_TTL_S = 35 * 24 * 3600


def hourly_counter_key(name: str, hour) -> str:
    if name not in COUNTERS:
        raise ValueError(f"unknown CRM counter {name!r}")
    return f"{PREFIX}stats:{name}:{hour:%Y%m%d%H}"


BREAKER_OPEN_KEY = f"{PREFIX}breaker:open"  # present while the breaker is open (TTL = cool-down)
BREAKER_TRIPPED_KEY = f"{PREFIX}breaker:tripped"  # present from opening until a probe succeeds
BREAKER_PROBE_KEY = f"{PREFIX}breaker:probe"  # the one half-open trial call in flight
BREAKER_FAILURES_KEY = f"{PREFIX}breaker:failures"  # consecutive failures while closed
