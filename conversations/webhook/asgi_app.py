"""`/webhooks/whatsapp/` as a plain ASGI app: what daphne serves (supportbot/asgi.py).

Meta's servers post every message here, and each POST must be stored and acknowledged fast
(issue 2: p95 under 50 ms). Through Django's handler a POST crossed between the event loop and
threads about fifteen times (every browser middleware hook, the request signals, the view, the
wake), several times the CPU of the work itself. Here it crosses once: verify, parse and store
in one worker thread (a 3 MB body is no work for the event loop); then answer; then wake the
worker from the event loop. The answers are the Django view's (conversations/webhook/views.py holds
the checks both use), and that view still serves the path to Django's test client and to any
WSGI server.
"""

import logging
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from conversations import events, log_context, metrics
from conversations.threads import in_thread
from conversations.webhook.ingest import IngestResult, ingest_notification
from conversations.webhook.views import (
    MAX_BODY_BYTES,
    TEXT_PLAIN,
    Refused,
    check_declared_length,
    handshake,
    log_ingested,
    verified_notification,
)

logger = logging.getLogger(__name__)

_SIGNATURE = b"x-hub-signature-256"


class Disconnected(Exception):
    """The client went away before its body arrived."""


class WhatsAppWebhookApp:
    async def __call__(self, scope, receive, send):
        with log_context.bound(request_id=log_context.new_request_id()):
            await self._answer(scope, receive, send)

    async def _answer(self, scope, receive, send):
        headers = dict(scope["headers"])  # names arrive lower-cased; the last repeat wins
        woken: list[int] = []
        staff_events: list = []
        try:
            if not _host_allowed(headers.get(b"host", b"").decode("latin-1")):
                raise Refused(400, "bad request: host not allowed")
            if scope["method"] == "GET":
                query = scope.get("query_string", b"").decode("latin-1")
                status, text = handshake(dict(parse_qsl(query, keep_blank_values=True)))
            elif scope["method"] == "POST":
                status, text = await self._notification(headers, receive, woken, staff_events)
            else:
                status, text = 405, "method not allowed"
        except Refused as refused:
            status, text = refused.status, refused.text
        except Disconnected:
            return
        except Exception:
            logger.exception("webhook failed")  # Meta retries a delivery we did not answer 200
            status, text = 500, "server error"
        metrics.inc(metrics.WEBHOOK_REQUESTS, status=status)
        await _respond(send, status, text)
        # Meta has its answer: the messages are committed, and the wakes need not hold it up
        # (a slow Redis would make Meta retry). A wake lost here, like any lost wake, is
        # picked up by the sweeper.
        for conversation_id in woken:
            await events.asend_wake(conversation_id)
        for event in staff_events:  # the desk's live view, after the worker's wakes
            await events.asend_to_staff(event)

    async def _notification(
        self, headers: dict, receive, woken: list[int], staff_events: list
    ) -> tuple[int, str]:
        content_length = headers.get(b"content-length")
        check_declared_length(content_length.decode("latin-1") if content_length else None)
        body = await _read_body(receive)
        signature = headers.get(_SIGNATURE)
        signature = signature.decode("latin-1") if signature is not None else None
        result = await in_thread(_verify_and_store)(body, signature)
        woken.extend(result.conversation_ids)
        staff_events.extend(result.staff_events)
        return 200, "ok"


def _verify_and_store(body: bytes, signature: str | None) -> IngestResult:
    """One unit of work: every message is committed when it returns. The result names the
    conversations to wake and the staff events to send."""
    notification = verified_notification(body, signature)
    result = ingest_notification(notification, wake=False)
    log_ingested(notification, result)
    return result


async def _read_body(receive) -> bytes:
    """The body, or one byte past the limit at most: a body without (or lying about) its
    length is still caught."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES or not message.get("more_body", False):
            return b"".join(chunks)[: MAX_BODY_BYTES + 1]


def _host_allowed(host: str) -> bool:
    """DJANGO_ALLOWED_HOSTS, checked as Django's request.get_host() checks it."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


async def _respond(send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", TEXT_PLAIN.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
