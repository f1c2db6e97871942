"""Where the cache, the conversation locks and the channel layer find Redis: one server
(REDIS_URL), a master found through Redis Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_MASTER), or
an in-process fakeredis (embedded mode, neither set). Both django-redis and channels-redis ask the
sentinels for the current master, so a failover moves every process without a restart."""

from django.core.exceptions import ImproperlyConfigured

from supportbot.env import env_int, env_list, env_str

# redis-py 8 reads with a 5 s socket timeout by default, the same as the channel layer's 5 s
# BZPOPMIN: an idle worker's listener then died with TimeoutError. Read longer.
CHANNEL_SOCKET_TIMEOUT_S = 30
CACHE_OPTIONS = {
    "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
    "SOCKET_CONNECT_TIMEOUT": 1,
    "SOCKET_TIMEOUT": 1,
}
CHANNEL_CONFIG = {"prefix": "supportbot:channels", "capacity": 1000, "expiry": 60}


def sentinels_from_env() -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; a bad entry names the variable."""
    sentinels = []
    for entry in env_list("REDIS_SENTINELS", []):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS must be comma-separated host:port pairs, not {entry!r}"
            )
        sentinels.append((host.strip("[]"), int(port)))
    return sentinels


def sentinel_master_from_env(sentinels: list, redis_url: str) -> str:
    master = env_str("REDIS_SENTINEL_MASTER")
    if sentinels and redis_url:
        raise ImproperlyConfigured("Set REDIS_URL or REDIS_SENTINELS, not both")
    if sentinels and not master:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master's name)"
        )
    if master and not sentinels:
        raise ImproperlyConfigured("REDIS_SENTINEL_MASTER needs REDIS_SENTINELS")
    return master


def caches(*, redis_url: str, sentinels: list, master: str) -> dict:
    options = dict(CACHE_OPTIONS, CLIENT_CLASS="django_redis.client.DefaultClient")
    location = redis_url
    if sentinels:
        db = env_int("REDIS_DB", 0, maximum=15)
        location = f"redis://{master}/{db}"
        options.update(
            CLIENT_CLASS="django_redis.client.SentinelClient",
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            SENTINELS=sentinels,
        )
        if password := env_str("REDIS_PASSWORD"):
            options["PASSWORD"] = password
    elif not redis_url:
        import fakeredis

        location = "redis://embedded:6379/0"
        options["CONNECTION_POOL_KWARGS"] = {"connection_class": fakeredis.FakeRedisConnection}
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "supportbot",
            "OPTIONS": options,
        }
    }


def channel_layers(*, redis_url: str, sentinels: list, master: str) -> dict:
    if sentinels:
        host = {
            "sentinels": sentinels,
            "master_name": master,
            "db": env_int("REDIS_DB", 0, maximum=15),
            "socket_timeout": CHANNEL_SOCKET_TIMEOUT_S,
        }
        if password := env_str("REDIS_PASSWORD"):
            host["password"] = password
    elif redis_url:
        host = {"address": redis_url, "socket_timeout": CHANNEL_SOCKET_TIMEOUT_S}
    else:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": dict(CHANNEL_CONFIG, hosts=[host]),
        }
    }
