"""settings.py read afresh under a given environment (runpy), without touching django.conf.settings."""

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "supportbot" / "settings.py"
ALL_VARIABLES = [
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_DB",
    "REDIS_PASSWORD",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_API_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "CRM_BASE_URL",
    "CRM_API_TOKEN",
    "CRM_CLIENT_CLASS",
    "OUTAGE_API_TOKEN",
    "WORKER_MAX_TURNS",
    "WORKER_THREADS",
    "DATABASE_POOL_SIZE",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "DJANGO_TIME_ZONE",
    "DJANGO_LANGUAGE_CODE",
    "SUPPORTBOT_TEST_DATABASE_NAME",
    "MEDIA_STORAGE_BACKEND",
    "MEDIA_STORAGE_OPTIONS",
]


def load_settings(monkeypatch, **environment) -> dict:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_it_runs_embedded_with_no_environment(monkeypatch):
    loaded = load_settings(monkeypatch)
    assert loaded["EMBEDDED"] is True
    assert loaded["DEBUG"] is False
    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert "FakeRedisConnection" in repr(loaded["CACHES"]["default"]["OPTIONS"])
    assert loaded["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"


def test_it_uses_redis_and_postgresql_when_configured(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        DJANGO_SECRET_KEY="s3cret",
        DATABASE_URL="postgresql://app@db.internal:5432/supportbot",
        REDIS_URL="redis://cache.internal:6379/2",
    )
    assert loaded["EMBEDDED"] is False
    database = loaded["DATABASES"]["default"]
    assert (database["ENGINE"], database["NAME"], database["HOST"]) == (
        "django.db.backends.postgresql",
        "supportbot",
        "db.internal",
    )
    assert database["CONN_MAX_AGE"] == 0
    assert database["OPTIONS"]["pool"]["max_size"] == 20
    assert loaded["CACHES"]["default"]["LOCATION"] == "redis://cache.internal:6379/2"
    assert "CONNECTION_POOL_KWARGS" not in loaded["CACHES"]["default"]["OPTIONS"]
    layer = loaded["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert host["address"] == "redis://cache.internal:6379/2"
    # Longer than channels-redis' 5 s blocking read, or an idle listener times out and dies.
    assert host["socket_timeout"] > 5
    assert database["CONN_MAX_AGE"] == 0  # per-request threads under ASGI must not keep one each


def test_it_stores_values_as_json_not_pickle(monkeypatch):
    loaded = load_settings(monkeypatch)
    assert loaded["CACHES"]["default"]["OPTIONS"]["SERIALIZER"].endswith("JSONSerializer")


def test_it_requires_a_secret_key_in_production(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        load_settings(monkeypatch, REDIS_URL="redis://cache.internal:6379/0")


def test_it_reads_allowed_hosts_as_a_list(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_ALLOWED_HOSTS="bot.isp.example, admin.isp.example")
    assert loaded["ALLOWED_HOSTS"] == ["bot.isp.example", "admin.isp.example"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_DEBUG", "sometimes"),
        ("DATABASE_URL", "nonsense"),
        ("DATABASE_URL", "postgresql://app@db.internal:5432/"),
        ("REDIS_URL", "http://cache.internal:6379"),
        ("WHATSAPP_API_BASE_URL", "graph.facebook.com"),
        ("WHATSAPP_PHONE_NUMBER_ID", "phone-1"),
        ("OPENAI_BASE_URL", "localhost:8080/v1"),
        ("CRM_BASE_URL", "ftp://crm.isp.example"),
        ("WORKER_MAX_TURNS", "0"),
        ("WORKER_THREADS", "many"),
        ("DATABASE_POOL_SIZE", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("DJANGO_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_it_names_the_variable_holding_nonsense(monkeypatch, variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        load_settings(monkeypatch, **{variable: value})


def test_it_needs_a_phone_number_id_with_an_access_token(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="WHATSAPP_PHONE_NUMBER_ID"):
        load_settings(monkeypatch, WHATSAPP_ACCESS_TOKEN="token")


def test_it_keeps_secrets_out_of_error_messages(monkeypatch):
    with pytest.raises(ImproperlyConfigured) as raised:
        load_settings(monkeypatch, DATABASE_URL="mysqlx://app:hunter2@db.internal/app")
    assert "hunter2" not in str(raised.value)


def test_it_sizes_the_postgresql_pool_from_the_environment(monkeypatch):
    loaded = load_settings(
        monkeypatch, DATABASE_URL="postgresql://app@db.internal/supportbot", DATABASE_POOL_SIZE="8"
    )
    assert loaded["DATABASES"]["default"]["OPTIONS"]["pool"]["max_size"] == 8


def test_it_logs_json_with_log_format_json(monkeypatch):
    loaded = load_settings(monkeypatch, LOG_FORMAT="JSON")
    assert loaded["LOGGING"]["handlers"]["console"]["formatter"] == "json"


def test_it_reads_the_metrics_token(monkeypatch):
    assert load_settings(monkeypatch)["METRICS_TOKEN"] == ""
    assert load_settings(monkeypatch, METRICS_TOKEN="t0k")["METRICS_TOKEN"] == "t0k"


def test_it_speaks_brazilian_portuguese_by_default_and_english_on_request(monkeypatch):
    assert load_settings(monkeypatch)["LANGUAGE_CODE"] == "pt-br"
    assert load_settings(monkeypatch, DJANGO_LANGUAGE_CODE="en")["LANGUAGE_CODE"] == "en"


def test_it_refuses_a_language_it_has_no_translation_for(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_LANGUAGE_CODE"):
        load_settings(monkeypatch, DJANGO_LANGUAGE_CODE="klingon")


def test_media_goes_to_the_storage_backend_the_environment_names(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        MEDIA_STORAGE_BACKEND="storages.backends.s3.S3Storage",
        MEDIA_STORAGE_OPTIONS='{"bucket_name": "midia"}',
    )
    assert loaded["STORAGES"]["default"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "midia"},
    }
    assert loaded["STORAGES"]["staticfiles"]["BACKEND"] == "supportbot.static.StaticFilesStorage"


def test_media_goes_to_var_media_by_default(monkeypatch):
    loaded = load_settings(monkeypatch)
    default = loaded["STORAGES"]["default"]
    assert default["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert str(loaded["MEDIA_ROOT"]).endswith("var/media")


@pytest.mark.parametrize("options", ["{not json", "[1, 2]", '"bucket"'])
def test_it_refuses_media_storage_options_that_are_not_a_json_object(monkeypatch, options):
    with pytest.raises(ImproperlyConfigured, match="MEDIA_STORAGE_OPTIONS must be a JSON object"):
        load_settings(monkeypatch, MEDIA_STORAGE_OPTIONS=options)
