"""System checks for risky but legal combinations of settings."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def check_deployment_mode(app_configs, **kwargs):
    problems = []
    if not settings.DEBUG and settings.EMBEDDED:
        problems.append(
            Warning(
                "DEBUG is off but the cache, locks and channel layer are in-process (REDIS_URL unset).",
                hint="Set REDIS_URL so several web and worker processes share locks and the queue.",
                id="supportbot.W001",
            )
        )
    if not settings.EMBEDDED and not settings.WHATSAPP_APP_SECRET:
        problems.append(
            Warning(
                "WHATSAPP_APP_SECRET is unset outside embedded mode: every webhook POST will be refused.",
                hint="Set WHATSAPP_APP_SECRET to the Meta app secret.",
                id="supportbot.W002",
            )
        )
    if not settings.EMBEDDED and not settings.WHATSAPP_VERIFY_TOKEN:
        problems.append(
            Warning(
                "WHATSAPP_VERIFY_TOKEN is unset outside embedded mode: Meta cannot verify the webhook.",
                hint="Set WHATSAPP_VERIFY_TOKEN to the token configured in the Meta app.",
                id="supportbot.W003",
            )
        )
    if not settings.DEBUG and "sqlite" in settings.DATABASES["default"]["ENGINE"]:
        problems.append(
            Warning(
                "DEBUG is off but the database is the embedded SQLite file.",
                hint="Set DATABASE_URL to PostgreSQL for production.",
                id="supportbot.W004",
            )
        )
    return problems
