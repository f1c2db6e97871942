"""CACHES settings for tests that point django-redis at another Redis, or at one that is down."""

import fakeredis


def redis_caches(location: str, **pool_kwargs) -> dict:
    options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
        "SOCKET_CONNECT_TIMEOUT": 0.5,
        "SOCKET_TIMEOUT": 0.5,
    }
    if pool_kwargs:
        options["CONNECTION_POOL_KWARGS"] = pool_kwargs
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "supportbot",
            "OPTIONS": options,
        }
    }


# fakeredis with connected=False: every command fails as if Redis were down.
DOWN_CACHES = redis_caches(
    "redis://down:6379/0", connection_class=fakeredis.FakeRedisConnection, connected=False
)
