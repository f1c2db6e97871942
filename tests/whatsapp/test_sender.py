import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Customer, Message, Turn
from conversations.whatsapp import sender
from conversations.whatsapp.window import within_reply_window
from tests.fakes.http import FakeHTTPServer, Reply

PHONE_ID = "106540352242922"
TOKEN = "test-access-token"
TEXT = "Olá Maria, sua conexão foi restabelecida."


def accepted(wamid: str = "wamid.OUT1") -> Reply:
    return Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": wamid}]})


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """Tiny backoff and timeouts so retry tests take milliseconds."""
    monkeypatch.setattr(sender, "BACKOFF_FACTOR", 0.001)
    monkeypatch.setattr(sender, "BACKOFF_MAX", 0.01)
    monkeypatch.setattr(sender, "RETRY_AFTER_MAX", 0.05)
    monkeypatch.setattr(sender, "READ_TIMEOUT", 0.3)
    monkeypatch.setattr(sender, "MAX_RETRIES", 3)
    sender.reset_sessions()
    yield
    sender.reset_sessions()


@pytest.fixture
def cloud(settings):
    """Point the sender at a fake Cloud API; `cloud(handler)` starts it."""
    servers = []

    def start(handler) -> FakeHTTPServer:
        server = FakeHTTPServer(handler).start()
        servers.append(server)
        settings.WHATSAPP_ACCESS_TOKEN = TOKEN
        settings.WHATSAPP_PHONE_NUMBER_ID = PHONE_ID
        settings.WHATSAPP_API_BASE_URL = server.url + "/v23.0"
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def conversation(db):
    customer = Customer.objects.create(
        wa_id="5511987654321", reply_wa_id="551187654321", profile_name="Maria"
    )
    return Conversation.objects.create(customer=customer)


def scripted(*replies):
    """A handler answering with `replies` in order (the last one repeats)."""
    queue = list(replies)

    def handler(request):
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply == "drop":
            raise ConnectionAbortedError
        if isinstance(reply, tuple) and reply[0] == "sleep":
            time.sleep(reply[1])
            return accepted("wamid.SLOW")
        return reply

    return handler


def test_it_posts_the_cloud_api_payload_and_stores_the_wamid(cloud, conversation):
    server = cloud(scripted(accepted("wamid.OK")))
    turn = Turn.objects.create(conversation=conversation)

    message = sender.send_text(conversation, TEXT, kind="reply", turn=turn)

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == f"/v23.0/{PHONE_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "551187654321",  # reply_wa_id: the number as WhatsApp last sent it
        "type": "text",
        "text": {"preview_url": False, "body": TEXT},
    }
    message.refresh_from_db()
    assert message.provider_id == "wamid.OK"
    assert message.direction == Message.Direction.OUTBOUND
    assert message.delivery_status == Message.Delivery.SENT
    assert message.kind == "reply"
    assert message.turn == turn
    assert message.text == TEXT
    assert message.sent_at is not None


def test_it_sends_to_the_wa_id_when_there_is_no_reply_number(cloud, conversation):
    Customer.objects.filter(pk=conversation.customer_id).update(reply_wa_id="")
    conversation.refresh_from_db()
    server = cloud(scripted(accepted()))
    sender.send_text(conversation, TEXT, kind="notice")
    assert server.requests[0].json()["to"] == "5511987654321"


@pytest.mark.parametrize(
    "failure",
    [
        Reply(429, {"error": {"code": 130429}}),
        Reply(500, {"error": {"code": 1}}),
        Reply(503, "unavailable"),
        "drop",
    ],
    ids=["429", "500", "503", "connection-drop"],
)
def test_it_retries_transient_failures_then_succeeds(cloud, conversation, failure):
    server = cloud(scripted(failure, failure, accepted("wamid.LATE")))
    message = sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 3
    assert message.provider_id == "wamid.LATE"
    assert message.delivery_status == Message.Delivery.SENT


def test_it_honours_a_small_retry_after(cloud, conversation, monkeypatch):
    monkeypatch.setattr(sender, "RETRY_AFTER_MAX", 5)
    server = cloud(scripted(Reply(429, {}, {"Retry-After": "1"}), accepted()))
    started = time.monotonic()
    sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 0.9


def test_it_ignores_a_malformed_retry_after(cloud, conversation):
    server = cloud(scripted(Reply(429, {}, {"Retry-After": "soon"}), accepted()))
    sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 2


def test_it_caps_a_long_retry_after(cloud, conversation):
    # RETRY_AFTER_MAX is 0.05 s here: an hour-long Retry-After must not stall the reply.
    server = cloud(scripted(Reply(429, {}, {"Retry-After": "3600"}), accepted()))
    sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 2


def test_it_gives_up_after_the_bound_and_stores_a_failed_message(cloud, conversation):
    server = cloud(scripted(Reply(500, {"error": {"code": 2, "message": "x"}})))
    with pytest.raises(sender.SendError):
        sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 1 + sender.MAX_RETRIES
    message = Message.objects.get()
    assert message.delivery_status == Message.Delivery.FAILED
    assert message.provider_id is None
    assert "500" in message.failure_reason
    assert message.text == TEXT


def test_it_gives_up_when_the_connection_keeps_dropping(cloud, conversation):
    server = cloud(scripted("drop"))
    with pytest.raises(sender.SendError):
        sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 1 + sender.MAX_RETRIES
    assert Message.objects.get().delivery_status == Message.Delivery.FAILED


@pytest.mark.parametrize("status", [400, 401, 404])
def test_it_does_not_retry_client_errors(cloud, conversation, status):
    server = cloud(scripted(Reply(status, {"error": {"code": 131030, "type": "OAuthException"}})))
    with pytest.raises(sender.SendError, match=str(status)):
        sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 1
    message = Message.objects.get()
    assert message.delivery_status == Message.Delivery.FAILED
    assert message.delivery_errors[0]["reason"].startswith("Cloud API answered")


def test_it_retries_a_read_timeout_and_succeeds(cloud, conversation):
    server = cloud(scripted(("sleep", 0.6), accepted("wamid.AFTER-TIMEOUT")))
    message = sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 2
    assert message.provider_id == "wamid.AFTER-TIMEOUT"


def test_it_bounds_read_timeout_retries(cloud, conversation):
    server = cloud(scripted(("sleep", 0.6)))
    with pytest.raises(sender.SendError, match="unreachable"):
        sender.send_text(conversation, TEXT, kind="reply")
    assert len(server.requests) == 1 + sender.MAX_RETRIES
    assert Message.objects.get().delivery_status == Message.Delivery.FAILED


def test_it_fails_when_the_answer_has_no_message_id(cloud, conversation):
    cloud(scripted(Reply(200, {"messages": []})))
    with pytest.raises(sender.SendError, match="no message id"):
        sender.send_text(conversation, TEXT, kind="reply")
    assert Message.objects.get().delivery_status == Message.Delivery.FAILED


def test_it_fails_when_the_api_is_unreachable(settings, conversation):
    with FakeHTTPServer(scripted(accepted())) as server:
        url = server.url  # a port that is closed once the server stops
    settings.WHATSAPP_ACCESS_TOKEN, settings.WHATSAPP_PHONE_NUMBER_ID = TOKEN, PHONE_ID
    settings.WHATSAPP_API_BASE_URL = url
    with pytest.raises(sender.SendError, match="unreachable"):
        sender.send_text(conversation, TEXT, kind="reply")


def test_it_never_logs_the_number_or_the_text(cloud, conversation, caplog):
    cloud(scripted(Reply(400, {"error": {"code": 100, "message": "bad 551187654321"}})))
    caplog.set_level(logging.DEBUG, logger="conversations.whatsapp.sender")
    with pytest.raises(sender.SendError):
        sender.send_text(conversation, TEXT, kind="reply")
    assert caplog.records
    assert "87654321" not in caplog.text
    assert "restabelecida" not in caplog.text


def test_the_console_sender_logs_masked_and_stores_the_message(settings, conversation, caplog):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    caplog.set_level(logging.INFO, logger="conversations.whatsapp.sender")
    message = sender.send_text(conversation, TEXT, kind="fallback")

    message.refresh_from_db()
    assert message.provider_id.startswith("console.")
    assert message.delivery_status == Message.Delivery.SENT
    assert message.kind == "fallback"
    assert "console sender" in caplog.text
    assert "5511********21" in caplog.text or "5511******21" in caplog.text
    assert "87654321" not in caplog.text
    assert "restabelecida" not in caplog.text
    assert f"<{len(TEXT)} chars>" in caplog.text


def test_the_console_sender_gives_each_message_its_own_id(settings, conversation):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    first = sender.send_text(conversation, "a", kind="reply")
    second = sender.send_text(conversation, "b", kind="reply")
    assert first.provider_id != second.provider_id


def inbound(conversation, wamid="wamid.IN1"):
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        provider_id=wamid,
        text="oi",
        state=Message.State.PENDING,
    )


def test_it_sends_the_typing_indicator_payload(cloud, conversation):
    server = cloud(scripted(Reply(200, {"success": True})))
    assert sender.send_typing_indicator(inbound(conversation)) is True
    [request] = server.requests
    assert request.path == f"/v23.0/{PHONE_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN1",
        "typing_indicator": {"type": "text"},
    }


@pytest.mark.parametrize(
    "failure", [Reply(500, {}), Reply(400, {"error": {"code": 100}}), "drop", ("sleep", 6)]
)
def test_the_typing_indicator_never_raises(cloud, conversation, failure, monkeypatch):
    monkeypatch.setattr(sender, "TYPING_TIMEOUT", (0.2, 0.2))
    server = cloud(scripted(failure))
    assert sender.send_typing_indicator(inbound(conversation)) is False
    assert len(server.requests) == 1  # cosmetic: never retried


def test_the_typing_indicator_never_raises_when_unreachable(settings, conversation):
    settings.WHATSAPP_ACCESS_TOKEN, settings.WHATSAPP_PHONE_NUMBER_ID = TOKEN, PHONE_ID
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"
    assert sender.send_typing_indicator(inbound(conversation)) is False


def test_the_typing_indicator_needs_an_inbound_message(cloud, conversation):
    server = cloud(scripted(Reply(200, {})))
    outbound = Message.objects.create(
        conversation=conversation, direction=Message.Direction.OUTBOUND, provider_id="wamid.X"
    )
    assert sender.send_typing_indicator(outbound) is False
    assert server.requests == []


def test_the_console_typing_indicator_only_logs(settings, conversation, caplog):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    caplog.set_level(logging.INFO, logger="conversations.whatsapp.sender")
    assert sender.send_typing_indicator(inbound(conversation)) is True
    assert "typing indicator" in caplog.text


@pytest.mark.parametrize(
    ("age", "open_"),
    [
        (timedelta(minutes=1), True),
        (timedelta(hours=23, minutes=59), True),
        (timedelta(hours=24), False),
        (timedelta(days=3), False),
        (None, False),  # the customer never wrote: nothing to reply to
    ],
)
def test_the_reply_window_is_24_hours_from_the_customers_last_message(age, open_):
    last_inbound_at = None if age is None else timezone.now() - age
    assert within_reply_window(last_inbound_at) is open_
