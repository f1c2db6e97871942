"""Health endpoints for load balancers and orchestrators.

- `/healthz`: the process is up (no database, no Redis).
- `/readyz`: the process can do its work: the database answers, every migration is applied,
  and Redis answers when REDIS_URL is set. 200, or 503 with a JSON body naming the failed checks.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

# Once every migration this code knows is applied it stays so for the life of the process.
_migrations_applied = False


def healthz(request):
    """Liveness probe; also the trivial view the ingest benchmark measures as its floor."""
    return HttpResponse("ok", content_type="text/plain")


def check_database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_migrations() -> None:
    global _migrations_applied
    if _migrations_applied:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied: {names}")
    _migrations_applied = True


def check_redis() -> None:
    cache.client.get_client(write=True).ping()


def _checks():
    yield "database", check_database
    yield "migrations", check_migrations
    if settings.REDIS_URL:
        yield "redis", check_redis


@never_cache
def readyz(request):
    results, failed = {}, []
    database_ok = True
    for name, check in _checks():
        if name == "migrations" and not database_ok:
            results[name] = "skipped: the database is down"
            failed.append(name)
            continue
        try:
            check()
        except Exception as exc:
            logger.warning("readiness check %s failed (%s)", name, type(exc).__name__)
            # The class name and the check's own words; never a URL (it may hold a password).
            detail = str(exc) if name == "migrations" else type(exc).__name__
            results[name] = f"failed: {detail}"
            failed.append(name)
            database_ok = database_ok and name != "database"
        else:
            results[name] = "ok"
    body = {"status": "ready" if not failed else "unavailable", "failed": failed, "checks": results}
    return JsonResponse(body, status=503 if failed else 200)
