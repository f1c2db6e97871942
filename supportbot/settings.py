"""Settings come from the environment only; README "Configuration" lists every variable."""

import zoneinfo
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from supportbot.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DJANGO_DEBUG", False)
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
# Embedded mode: no REDIS_URL, so cache, locks and the channel layer live inside this process.
EMBEDDED = not REDIS_URL

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off and REDIS_URL is set"
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
    "django.middleware.security.SecurityMiddleware",
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

# Cache and locks: django-redis on REDIS_URL, or on an in-process fakeredis in embedded mode.
_redis_options = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
    "SOCKET_CONNECT_TIMEOUT": 1,
    "SOCKET_TIMEOUT": 1,
}
if EMBEDDED:
    import fakeredis

    _redis_options["CONNECTION_POOL_KWARGS"] = {"connection_class": fakeredis.FakeRedisConnection}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL or "redis://embedded:6379/0",
        "KEY_PREFIX": "supportbot",
        "OPTIONS": _redis_options,
    }
}

if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as the layer's
                # 5 s BZPOPMIN: an idle worker's listener then died with TimeoutError. Read longer.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": "supportbot:channels",
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }

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
STATIC_ROOT = VAR_DIR / "static"

DATA_UPLOAD_MAX_MEMORY_SIZE = 3 * 1024 * 1024 + 1024

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
