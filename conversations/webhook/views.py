"""`/webhooks/whatsapp/`: Meta's verification handshake (GET) and signed notifications (POST).

A POST is verified over its raw bytes, parsed, stored and answered 200 at once; the worker is
woken after the commit and does everything else. Nothing is stored for a request we refuse.

The checks live here, apart from any transport: under daphne the path is served by the ASGI
app in `conversations/webhook/asgi_app.py`; the Django view below serves it everywhere else (the
test client, `runserver`, a WSGI server) with the very same answers.
"""

import hmac
import json
import logging
from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conversations import metrics
from conversations.webhook.ingest import IngestResult, ingest_notification
from conversations.whatsapp.payloads import Notification, PayloadError, parse_notification
from conversations.whatsapp.signature import HEADER, verify_signature

logger = logging.getLogger(__name__)

# Cloud API notifications can reach 3 MB.
MAX_BODY_BYTES = 3 * 1024 * 1024
TEXT_PLAIN = "text/plain; charset=utf-8"


class Refused(Exception):
    """The request is answered with `status` and `text`, and nothing is stored."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


def handshake(params: Mapping[str, str]) -> tuple[int, str]:
    """Meta's verification GET: (200, the challenge) when the verify token matches."""
    mode = params.get("hub.mode", "")
    token = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    expected = settings.WHATSAPP_VERIFY_TOKEN
    if (
        mode == "subscribe"
        and expected
        and challenge
        and hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))
    ):
        logger.info("webhook verification handshake accepted")
        return 200, challenge
    logger.warning("webhook verification handshake refused (mode=%r)", mode[:20])
    return 403, "forbidden"


def check_declared_length(content_length: str | None) -> None:
    """Refuse a body announced as over the limit before reading it."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        raise Refused(400, "bad Content-Length") from None
    if declared > MAX_BODY_BYTES:
        logger.warning("webhook refused: body of %d bytes is over the limit", declared)
        raise Refused(413, "payload too large")


def verified_notification(body: bytes, signature: str | None) -> Notification:
    """The parsed notification of a body read in full (at most MAX_BODY_BYTES + 1 bytes)."""
    if len(body) > MAX_BODY_BYTES:
        logger.warning("webhook refused: body is over the limit")
        raise Refused(413, "payload too large")
    secret = settings.WHATSAPP_APP_SECRET
    if not secret:
        logger.error("webhook refused: WHATSAPP_APP_SECRET is not configured")
        raise Refused(403, "forbidden")
    if not verify_signature(secret, body, signature):
        reason = "missing" if signature is None else "invalid"
        logger.warning("webhook refused: %s signature (%d bytes)", reason, len(body))
        raise Refused(403, "forbidden")
    try:
        return parse_notification(_decode(body))
    except PayloadError as exc:
        logger.warning("webhook refused: %s", exc)
        raise Refused(400, f"bad request: {exc}") from None


def log_ingested(notification: Notification, result: IngestResult) -> None:
    logger.info(
        "webhook: %d stored, %d duplicate, %d skipped, %d statuses applied, %d ignored",
        result.stored,
        result.duplicates,
        notification.skipped,
        result.statuses_applied,
        result.statuses_ignored,
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes):
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise PayloadError("body is not JSON") from None


# The Django view.


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _text(*handshake(request.GET))
    try:
        check_declared_length(request.META.get("CONTENT_LENGTH"))
        # Read at most one byte past the limit: a body without (or lying about) its length is
        # still caught.
        body = request.read(MAX_BODY_BYTES + 1)
        notification = verified_notification(body, request.headers.get(HEADER))
    except Refused as refused:
        return _text(refused.status, refused.text)
    log_ingested(notification, ingest_notification(notification))  # wakes on commit
    return _text(200, "ok")


def _text(status: int, body: str) -> HttpResponse:
    metrics.inc(metrics.WEBHOOK_REQUESTS, status=status)
    return HttpResponse(body, status=status, content_type=TEXT_PLAIN)
