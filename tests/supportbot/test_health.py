import pytest


@pytest.mark.django_db
def test_it_answers_ok_without_a_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


# --- /readyz ----------------------------------------------------------------------------------

from django.db import OperationalError  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402

from supportbot import health  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_migration_check(monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)


@pytest.mark.django_db
def test_it_is_ready_when_the_database_answers_and_every_migration_is_applied(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "failed": [],
        "checks": {"database": "ok", "migrations": "ok"},
    }


@pytest.mark.django_db
def test_it_names_the_database_when_it_is_down(client, monkeypatch, settings):
    settings.REDIS_URL = ""

    def down():
        raise OperationalError("connection refused to postgresql://user:secret@db/x")

    monkeypatch.setattr(health, "check_database", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database", "migrations"]
    assert body["checks"]["database"] == "failed: OperationalError"
    assert "secret" not in response.content.decode()


@pytest.mark.django_db
def test_it_names_an_unapplied_migration(client, settings):
    settings.REDIS_URL = ""
    newest = MigrationRecorder.Migration.objects.filter(app="conversations").latest("id")
    newest.delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"]
    assert f"conversations.{newest.name}" in body["checks"]["migrations"]


@pytest.mark.django_db
def test_it_names_redis_when_it_is_set_and_down(client, monkeypatch, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"

    class Down:
        def ping(self):
            raise ConnectionError("redis down")

    monkeypatch.setattr(health.cache.client, "get_client", lambda write=True: Down())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]
    assert response.json()["checks"]["redis"] == "failed: ConnectionError"


@pytest.mark.django_db
def test_it_checks_redis_when_it_is_set(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # the embedded fakeredis answers the ping
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.live
@pytest.mark.django_db
def test_it_is_ready_on_postgresql_and_redis(client, live_database_url, live_redis_url):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "migrations", "redis"}


@pytest.mark.live
@pytest.mark.django_db
def test_it_names_a_real_redis_that_does_not_answer(client, live_redis_url, monkeypatch):
    from django.conf import settings
    from django_redis.cache import RedisCache

    from tests.fakes.ports import free_port

    params = {**settings.CACHES["default"]}
    unreachable = RedisCache(f"redis://127.0.0.1:{free_port()}/0", params)
    monkeypatch.setattr(health, "cache", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]
