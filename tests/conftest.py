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
    unavailable(f"{name} is not reachable at {url or '(unset)'}; run `make live-test` with it up")


def unavailable(message: str) -> None:
    """Something a test needs is missing from this machine: in CI that fails the test, never
    skips it; elsewhere it skips with `message`."""
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


@pytest.fixture(autouse=True)
def _redis_health():
    """A test that breaks Redis must not make the next one skip it (crm_gateway backs off from
    a failing Redis for a few seconds)."""
    from crm_gateway import redis_health

    redis_health.reset()
    yield
    redis_health.reset()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Embedded-mode tests use a SQLite file (WAL, busy timeout, as `make run` does), not Django's
    shared in-memory database: its table locks fail a concurrent writer at once ("database table
    is locked") where a file waits, and the worker writes from many threads at once."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and not database.get("TEST", {}).get("NAME"):
        database.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("db") / "test.sqlite3"
        )


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory):
    """A SQLite file migrated once per run by `manage.py migrate` (seconds each time): tests that
    start real processes on SQLite take a copy (tests.fakes.processes.sqlite_copy)."""
    import sys

    from tests.fakes.processes import ProcessSet, process_env

    database = tmp_path_factory.mktemp("migrated") / "migrated.sqlite3"
    with ProcessSet() as procs:
        migrate = procs.start(
            "migrate",
            [sys.executable, "manage.py", "migrate", "--no-input"],
            process_env(DATABASE_URL=f"sqlite:///{database}"),
        )
        assert migrate.popen.wait(120) == 0, migrate.tail()
    return database
