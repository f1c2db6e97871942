"""`/webhooks/whatsapp/`: Meta's verification handshake (GET) and signed notifications (POST).

A POST is verified over its raw bytes, parsed, stored and answered 200 at once; the worker is
woken after the commit and does everything else. Nothing is stored for a request we refuse.
"""

import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conversations.ingest import ingest_notification
from conversations.payloads import PayloadError, parse_notification
from conversations.signature import HEADER, verify_signature

logger = logging.getLogger(__name__)

# Cloud API notifications can reach 3 MB.
MAX_BODY_BYTES = 3 * 1024 * 1024


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _handshake(request)
    return _notification(request)


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _handshake(request: HttpRequest) -> HttpResponse:
    mode = request.GET.get("hub.mode", "")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    expected = settings.WHATSAPP_VERIFY_TOKEN
    if (
        mode == "subscribe"
        and expected
        and challenge
        and hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))
    ):
        logger.info("webhook verification handshake accepted")
        return _text(challenge, 200)
    logger.warning("webhook verification handshake refused (mode=%r)", mode[:20])
    return _text("forbidden", 403)


def _notification(request: HttpRequest) -> HttpResponse:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _text("bad Content-Length", 400)
    if declared > MAX_BODY_BYTES:
        logger.warning("webhook refused: body of %d bytes is over the limit", declared)
        return _text("payload too large", 413)
    # Read at most one byte past the limit: a body without (or lying about) its length is still caught.
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        logger.warning("webhook refused: body is over the limit")
        return _text("payload too large", 413)

    secret = settings.WHATSAPP_APP_SECRET
    if not secret:
        logger.error("webhook refused: WHATSAPP_APP_SECRET is not configured")
        return _text("forbidden", 403)
    if not verify_signature(secret, body, request.headers.get(HEADER)):
        reason = "missing" if HEADER not in request.headers else "invalid"
        logger.warning("webhook refused: %s signature (%d bytes)", reason, len(body))
        return _text("forbidden", 403)

    try:
        notification = parse_notification(_decode(body))
    except PayloadError as exc:
        logger.warning("webhook refused: %s", exc)
        return _text(f"bad request: {exc}", 400)

    result = ingest_notification(notification)
    logger.info(
        "webhook: %d stored, %d duplicate, %d skipped, %d statuses applied, %d ignored",
        result.stored,
        result.duplicates,
        notification.skipped,
        result.statuses_applied,
        result.statuses_ignored,
    )
    return _text("ok", 200)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes):
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise PayloadError("body is not JSON") from None
