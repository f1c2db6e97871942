"""The only code that talks to the WhatsApp Cloud API: send a text, show the typing indicator.

Cloud API sender when WHATSAPP_ACCESS_TOKEN is set, console sender (logs masked, stores) otherwise.
Both are synchronous: the engine calls them from threads.
"""

import logging
import threading
import uuid

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from conversations import metrics, rows
from conversations.events import notify_staff_on_commit
from conversations.masking import mask_phone, mask_text
from conversations.models import Conversation, Message, Turn
from conversations.whatsapp.console import notify_simulator
from conversations.whatsapp.window import hand_over_outside_window, is_re_engagement_error

logger = logging.getLogger(__name__)

# Module constants so tests can shrink them (then call reset_sessions()).
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 20.0
# Retries after the first attempt, on 429, 5xx, connection errors and read timeouts.
MAX_RETRIES = 3
# urllib3 schedule: 0, 2*f, 4*f ... seconds between attempts, capped by BACKOFF_MAX.
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 8.0
# A Retry-After longer than this is cut down to it: the customer is waiting for the reply.
RETRY_AFTER_MAX = 10.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The typing indicator is cosmetic: one try, short timeouts.
TYPING_TIMEOUT = (2.0, 5.0)


class SendError(Exception):
    """The message could not be handed to WhatsApp; it is stored with delivery_status failed.

    `outside_window`: the Cloud API refused it with 131047 (the 24-hour window has closed).
    """

    def __init__(self, message: str, *, outside_window: bool = False):
        super().__init__(message)
        self.outside_window = outside_window


class _CappedRetry(Retry):
    """Honour Retry-After, but never sleep longer than RETRY_AFTER_MAX; ignore a malformed one."""

    def get_retry_after(self, response):
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:
            return None  # fall back to the backoff schedule
        return None if seconds is None else min(seconds, RETRY_AFTER_MAX)


def _retry_policy() -> Retry:
    # POST is not idempotent, but a lost reply is worse than a rare duplicate after a read
    # timeout; the bound keeps it to a few attempts.
    return _CappedRetry(
        total=MAX_RETRIES,
        connect=MAX_RETRIES,
        read=MAX_RETRIES,
        status=MAX_RETRIES,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"POST"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=BACKOFF_MAX,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


_sessions: dict[str, requests.Session] = {}
_sessions_lock = threading.Lock()


def _session(kind: str) -> requests.Session:
    """One pooled session per kind ("send" retries, "typing" does not), shared by threads."""
    with _sessions_lock:
        session = _sessions.get(kind)
        if session is None:
            retries = _retry_policy() if kind == "send" else Retry(total=0, redirect=0)
            adapter = HTTPAdapter(
                max_retries=retries,
                pool_connections=1,
                pool_maxsize=getattr(settings, "WORKER_THREADS", 10),
            )
            session = requests.Session()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _sessions[kind] = session
        return session


def reset_sessions() -> None:
    """Drop the pooled sessions (tests change the module constants, then call this)."""
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()


def _cloud_enabled() -> bool:
    return bool(settings.WHATSAPP_ACCESS_TOKEN)


def _messages_url() -> str:
    return f"{settings.WHATSAPP_API_BASE_URL}/{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"}


def _error_summary(response: requests.Response) -> dict:
    """Status and Meta's error code/title; never the body as a whole (it may echo the number)."""
    summary: dict = {"status": response.status_code}
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if isinstance(error, dict):
        for key in ("code", "error_subcode", "type"):
            if error.get(key) is not None:
                summary[key] = error[key]
    return summary


def _post_text(to: str, text: str) -> str:
    """Hand one text to the Cloud API; returns the wamid or raises SendError."""
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": text},
    }
    try:
        response = _session("send").post(
            _messages_url(),
            json=payload,
            headers=_headers(),
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
        )
    except requests.RequestException as exc:
        raise SendError(f"Cloud API unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        summary = _error_summary(response)
        raise SendError(
            f"Cloud API answered {summary}",
            outside_window=is_re_engagement_error(summary.get("code")),
        )
    try:
        return str(response.json()["messages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SendError("Cloud API answer has no message id") from exc


def send_text(
    conversation: Conversation, text: str, *, kind: str, turn: Turn | None = None
) -> Message:
    """Send `text` to the conversation's customer and store it as an outbound Message.

    The row is stored (queued) before the call so a crash mid-send still leaves a trace; it ends
    as sent with the wamid, or failed (then SendError is raised).
    """
    message = queue_text(conversation, text, kind=kind, turn=turn)
    return record_sent(conversation, message, hand_over(conversation, message))


def queue_text(
    conversation: Conversation, text: str, *, kind: str, turn: Turn | None = None
) -> Message:
    """Store an outbound text as queued, committed before anything is handed to WhatsApp."""
    return rows.insert(
        Message(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            type="text",
            text=text,
            kind=kind,
            turn=turn,
            delivery_status=Message.Delivery.QUEUED,
        )
    )


def hand_over(conversation: Conversation, message: Message) -> str:
    """Hand a queued message to the Cloud API (or the console); returns the provider id.

    On failure the message is stored as failed and SendError is raised.
    """
    customer = conversation.customer
    to = customer.reply_wa_id or customer.wa_id
    try:
        if _cloud_enabled():
            return _post_text(to, message.text)
        logger.info(
            "console sender: %s to %s: %s", message.kind, mask_phone(to), mask_text(message.text)
        )
        return f"console.{uuid.uuid4()}"
    except SendError as exc:
        message.delivery_status = Message.Delivery.FAILED
        message.failure_reason = str(exc)[:255]
        message.delivery_errors = [{"reason": str(exc)[:255]}]
        message.save(
            update_fields=["delivery_status", "failure_reason", "delivery_errors", "updated_at"]
        )
        logger.warning(
            "message %s (%s) to %s not sent: %s", message.pk, message.kind, mask_phone(to), exc
        )
        notify_simulator(customer.wa_id, message)
        if exc.outside_window:
            hand_over_outside_window(conversation.pk)
        notify_staff_on_commit(
            "delivery", conversation.pk, message_id=message.pk, status=message.delivery_status
        )
        raise


def record_sent(conversation: Conversation, message: Message, provider_id: str) -> Message:
    """Store that WhatsApp accepted the message."""
    rows.in_one_round_trip(sent_statements(conversation, message, provider_id))
    announce_sent(conversation, message)
    return message


def sent_statements(
    conversation: Conversation, message: Message, provider_id: str
) -> list[rows.Statement]:
    """record_sent's writes, for a caller that commits them with its own (the engine's turn)."""
    message.provider_id = provider_id
    message.delivery_status = Message.Delivery.SENT
    message.sent_at = message.updated_at = timezone.now()
    return [
        rows.update_statement(
            Message,
            message.pk,
            provider_id=provider_id,
            delivery_status=message.delivery_status,
            sent_at=message.sent_at,
            updated_at=message.updated_at,
        ),
        rows.update_statement(Conversation, conversation.pk, updated_at=message.sent_at),
    ]


def announce_sent(conversation: Conversation, message: Message) -> None:
    """Log the sent message (masked) and show it in the simulator, once it is stored as sent."""
    metrics.inc_reply(message.kind)
    customer = conversation.customer
    logger.info(
        "message %s (%s) sent to %s",
        message.pk,
        message.kind,
        mask_phone(customer.reply_wa_id or customer.wa_id),
    )
    notify_simulator(customer.wa_id, message)
    notify_staff_on_commit(
        "message", conversation.pk, message_id=message.pk, direction="out", kind=message.kind
    )


def send_typing_indicator(inbound: Message) -> bool:
    """Mark the customer's message read and show "typing..." (~25 s). Never raises."""
    try:
        if inbound.direction != Message.Direction.INBOUND or not inbound.provider_id:
            return False
        if not _cloud_enabled():
            logger.info("console sender: typing indicator for message %s", inbound.pk)
            return True
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": inbound.provider_id,
            "typing_indicator": {"type": "text"},
        }
        response = _session("typing").post(
            _messages_url(), json=payload, headers=_headers(), timeout=TYPING_TIMEOUT
        )
        if response.status_code >= 300:
            logger.info(
                "typing indicator for message %s refused: %s",
                inbound.pk,
                _error_summary(response),
            )
            return False
        return True
    except Exception as exc:  # best effort: a typing indicator never fails a turn
        logger.info("typing indicator for message %s failed: %s", inbound.pk, type(exc).__name__)
        return False
