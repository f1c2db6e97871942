import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=1
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Live tests need the real service: in CI a missing one fails the test, elsewhere it skips."""
    if url and _reachable(url):
        return
    message = f"{name} is not reachable at {url or '(unset)'}; run `make live-test` with it up"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def live_redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    require_service("Redis", url)
    return url


@pytest.fixture
def live_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    require_service("PostgreSQL", url)
    return url


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache (fakeredis in-process, or the live-test Redis db)."""
    from django.core.cache import cache

    cache.clear()
    yield
