"""Settings come from the environment only; README "Configuration" lists every variable."""

import json
import zoneinfo
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from supportbot import redis_config
from supportbot.env import (
    env_bool,
    env_choice,
    env_header,
    env_int,
    env_list,
    env_origins,
    env_path,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DJANGO_DEBUG", False)
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
REDIS_SENTINELS = redis_config.sentinels_from_env()
REDIS_SENTINEL_MASTER = redis_config.sentinel_master_from_env(REDIS_SENTINELS, REDIS_URL)
# Embedded mode: no Redis, so cache, locks and the channel layer live inside this process.
EMBEDDED = not (REDIS_URL or REDIS_SENTINELS)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off and Redis is configured"
        )
    SECRET_KEY = "embedded-mode-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "daphne",
    # Before the admin: conversations/templates/admin/base_site.html brands every admin page.
    "conversations",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crm_gateway",
    # After our apps: conversations' runworker (sweeper at start, graceful stop) overrides channels'.
    "channels",
]

MIDDLEWARE = [
    "supportbot.request_ids.request_id_middleware",  # issue 14: ids for the log lines
    "django.middleware.security.SecurityMiddleware",
    # Issue 14: static files without a proxy (hashed names, far-future caching).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "supportbot.urls"
ASGI_APPLICATION = "supportbot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL in production, a SQLite file under var/ otherwise.
_database_url = env_str("DATABASE_URL")
# PostgreSQL connections each process keeps at most (web or worker).
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 20, minimum=1, maximum=1000)
if _database_url:
    try:
        # conn_max_age=0: under ASGI each request runs in a fresh thread, and a persistent
        # connection per thread exhausted PostgreSQL (85 idle ones after 200 webhooks); the
        # pool below reuses connections instead.
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=0)}
    except Exception:
        # The URL may hold a password: say what is wanted, never echo the value.
        raise ImproperlyConfigured(
            "DATABASE_URL is not a database URL, e.g. postgresql://user@host:5432/db"
        ) from None
    if not DATABASES["default"].get("NAME"):
        raise ImproperlyConfigured(
            "DATABASE_URL must name a database, e.g. postgresql://user@host/db"
        )
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI every request and worker unit of work runs on some thread: a pool hands them
        # open connections (a new one costs a few ms) and bounds how many each process holds.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": 30,
        }
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "supportbot.sqlite3",
            # Web and worker threads write at once: WAL and a busy timeout instead of "database is locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
_test_database_name = env_str("SUPPORTBOT_TEST_DATABASE_NAME")
if _test_database_name:
    # Lets several test runs share one PostgreSQL server without dropping each other's database.
    DATABASES["default"]["TEST"] = {"NAME": _test_database_name}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache, locks and channel layer: Redis (REDIS_URL, or through Sentinel), or an in-process fakeredis
# in embedded mode (supportbot/redis_config.py).
CACHES = redis_config.caches(
    redis_url=REDIS_URL, sentinels=REDIS_SENTINELS, master=REDIS_SENTINEL_MASTER
)
CHANNEL_LAYERS = redis_config.channel_layers(
    redis_url=REDIS_URL, sentinels=REDIS_SENTINELS, master=REDIS_SENTINEL_MASTER
)

# WhatsApp Cloud API
WHATSAPP_APP_SECRET = env_str("WHATSAPP_APP_SECRET")
WHATSAPP_VERIFY_TOKEN = env_str("WHATSAPP_VERIFY_TOKEN")
WHATSAPP_ACCESS_TOKEN = env_str("WHATSAPP_ACCESS_TOKEN")
WHATSAPP_PHONE_NUMBER_ID = env_str("WHATSAPP_PHONE_NUMBER_ID")
WHATSAPP_API_BASE_URL = env_url(
    "WHATSAPP_API_BASE_URL", ("http", "https"), "https://graph.facebook.com/v23.0"
)
if WHATSAPP_ACCESS_TOKEN and not WHATSAPP_PHONE_NUMBER_ID:
    raise ImproperlyConfigured(
        "WHATSAPP_PHONE_NUMBER_ID must be set when WHATSAPP_ACCESS_TOKEN is set"
    )
if WHATSAPP_PHONE_NUMBER_ID and not WHATSAPP_PHONE_NUMBER_ID.isdigit():
    raise ImproperlyConfigured(
        f"WHATSAPP_PHONE_NUMBER_ID must be digits, not {WHATSAPP_PHONE_NUMBER_ID!r}"
    )
# In embedded mode without an app secret the simulator signs with this one (DEBUG only).
if not WHATSAPP_APP_SECRET and EMBEDDED:
    WHATSAPP_APP_SECRET = "embedded-simulator-secret"
if not WHATSAPP_VERIFY_TOKEN and EMBEDDED:
    WHATSAPP_VERIFY_TOKEN = "embedded-verify-token"

# OpenAI Responses API (or any compatible server)
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", ("http", "https"))
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-5-mini")

# The ISP's CRM
CRM_BASE_URL = env_url("CRM_BASE_URL", ("http", "https"))
CRM_API_TOKEN = env_str("CRM_API_TOKEN")
CRM_CLIENT_CLASS = env_str("CRM_CLIENT_CLASS", "crm_gateway.client.HttpCrmClient")
# Monitoring systems open and resolve outages with this bearer token.
OUTAGE_API_TOKEN = env_str("OUTAGE_API_TOKEN")

# Inbound worker: how many conversations one worker process keeps in flight.
WORKER_MAX_TURNS = env_int("WORKER_MAX_TURNS", 200, minimum=1, maximum=10000)
# Blocking calls (ORM, CRM, Redis) run on this many threads per worker process.
WORKER_THREADS = env_int("WORKER_THREADS", 32, minimum=1, maximum=1000)

# Production hardening (README "Running in production"): `manage.py check --deploy` passes
# with the variables a deployment sets. Cookies are secure unless DEBUG; HSTS is sent on HTTPS.
ADMIN_URL = env_path("ADMIN_URL", "admin/")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
# A staff session ends after this much inactivity: every request moves the expiry on.
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60) * 60
SESSION_SAVE_EVERY_REQUEST = True
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000, maximum=63072000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# true: Django redirects http to https; proxy: the TLS proxy in front already does (Django then
# trusts it, and the deploy check's reminder is silenced); false: nobody does (development).
SSL_REDIRECT = env_choice("DJANGO_SSL_REDIRECT", ("true", "proxy", "false"), "false")
SECURE_SSL_REDIRECT = SSL_REDIRECT == "true"
# Load balancers check /healthz over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SILENCED_SYSTEM_CHECKS = ["security.W008"] if SSL_REDIRECT == "proxy" else []
if not SECURE_HSTS_PRELOAD:
    # Preloading is a commitment for the whole domain: opt in, and be reminded of nothing.
    SILENCED_SYSTEM_CHECKS.append("security.W021")
SECURE_PROXY_SSL_HEADER = env_header("DJANGO_SECURE_PROXY_SSL_HEADER")
CSRF_TRUSTED_ORIGINS = env_origins("DJANGO_CSRF_TRUSTED_ORIGINS")
# Admin login throttling (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT failures from one user
# name, or from one IP address, that one is locked out for ADMIN_LOCKOUT_MINUTES. Its log lines
# name the user, IP and path, never the password (masked in the stored attempt too).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "supportbot.auth.AdminLoginThrottle",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("ADMIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True

# The admin speaks Brazilian Portuguese; DJANGO_LANGUAGE_CODE=en gives the English source texts.
# No LocaleMiddleware: the staff's browser language does not switch it.
LANGUAGE_CODE = env_str("DJANGO_LANGUAGE_CODE", "pt-br").lower()
if LANGUAGE_CODE not in ("pt-br", "en"):
    raise ImproperlyConfigured(f"DJANGO_LANGUAGE_CODE must be pt-br or en, not {LANGUAGE_CODE!r}")
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "America/Sao_Paulo")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"DJANGO_TIME_ZONE must be an IANA time zone, not {TIME_ZONE!r}"
    ) from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# Customers' voice notes, photos and documents: private, served only by the staff media view
# (conversations.staff.media_view), never under a public URL. Any Django storage backend works:
# MEDIA_STORAGE_BACKEND names its class and MEDIA_STORAGE_OPTIONS (JSON) its options, e.g.
# django-storages' S3 (README "Media storage").
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media-is-private/"  # nothing serves it; the storage needs a value
MEDIA_STORAGE_BACKEND = env_str(
    "MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
)
try:
    MEDIA_STORAGE_OPTIONS = json.loads(env_str("MEDIA_STORAGE_OPTIONS") or "{}")
except ValueError:
    raise ImproperlyConfigured("MEDIA_STORAGE_OPTIONS must be a JSON object") from None
if not isinstance(MEDIA_STORAGE_OPTIONS, dict):
    raise ImproperlyConfigured("MEDIA_STORAGE_OPTIONS must be a JSON object")
STORAGES = {
    "default": {"BACKEND": MEDIA_STORAGE_BACKEND, "OPTIONS": MEDIA_STORAGE_OPTIONS},
    # collectstatic's output with content-hashed names (STATIC_ROOT below).
    "staticfiles": {"BACKEND": "supportbot.static.StaticFilesStorage"},
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 3 * 1024 * 1024 + 1024

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )

# Operations (issue 14): logs, metrics, static files.
# LOG_FORMAT=json: one JSON object per line, with the conversation, turn and request ids.
LOG_FORMAT = env_str("LOG_FORMAT", "text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "conversations.log_context.IdsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["ids"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>`; unset, it is a 404.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# collectstatic's output, with content-hashed names; WhiteNoise serves it with far-future
# caching. Not strict: a page still renders (unhashed URL) before collectstatic has run.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT") or VAR_DIR / "static")
