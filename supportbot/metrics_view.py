"""`/metrics`: every process's counters and histograms (summed in Redis by conversations.metrics)
and gauges read from the database and Redis at scrape time, in Prometheus' text format.

Guarded by METRICS_TOKEN (`Authorization: Bearer ...`): 401 without it or with a wrong one,
404 while it is unset (the endpoint does not exist then).
"""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from conversations import metrics
from conversations.staff import reports
from crm_gateway.breaker import OPEN

GAUGES = {
    "supportbot_messages_pending": "Inbound messages waiting for a turn.",
    "supportbot_oldest_pending_message_seconds": "Age of the oldest pending inbound message.",
    "supportbot_conversations_waiting_for_staff": "Conversations handed over, not yet assigned.",
    "supportbot_turns_in_flight": "Turns running now.",
    "supportbot_workers_alive": "Worker processes whose heartbeat is recent.",
    "supportbot_crm_breaker_open": "1 while the CRM circuit breaker is open, else 0.",
}


def live_values() -> dict[str, float]:
    now = reports.live()
    return {
        "supportbot_messages_pending": now.messages_pending,
        "supportbot_oldest_pending_message_seconds": now.oldest_pending_seconds or 0.0,
        "supportbot_conversations_waiting_for_staff": now.waiting_for_staff,
        "supportbot_turns_in_flight": now.turns_in_flight,
        "supportbot_workers_alive": len(now.workers),
        "supportbot_crm_breaker_open": 1 if now.breaker == OPEN else 0,
    }


class _Collector:
    def collect(self):
        yield from metrics.families()
        for name, value in live_values().items():
            yield GaugeMetricFamily(name, GAUGES[name], value=value)


def _authorized(request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.METRICS_TOKEN
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


@require_GET
def metrics_view(request):
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off: METRICS_TOKEN is unset")
    if not _authorized(request):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
