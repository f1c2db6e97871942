"""The webhook as daphne serves it: through supportbot.asgi.application, an ASGI client."""

import asyncio
import json
import logging
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator, HttpCommunicator

from conversations import events
from conversations.models import Message
from conversations.threads import in_thread
from conversations.webhook.asgi_app import WhatsAppWebhookApp
from conversations.webhook.views import MAX_BODY_BYTES
from supportbot.asgi import application
from tests.fakes import whatsapp_payloads as wa

# The store runs in a worker thread with its own connection: real commits.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/webhooks/whatsapp/"
SECRET = "asgi-test-secret"
SENDER = "5511987654321"


@pytest.fixture(autouse=True)
def whatsapp_settings(settings):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.WHATSAPP_VERIFY_TOKEN = "verify-me"
    settings.ALLOWED_HOSTS = ["bot.example.com", "127.0.0.1"]
    return settings


@pytest.fixture(autouse=True)
async def inbound():
    """The in-process channel layer, empty before and after each test (it outlives tests);
    returns a function draining the wakes sent."""
    layer = get_channel_layer()
    await layer.flush()

    async def wakes() -> list:
        found = []
        while True:
            try:
                found.append(await asyncio.wait_for(layer.receive(events.INBOUND_CHANNEL), 0.2))
            except TimeoutError:  # nothing more
                return found

    yield wakes
    await layer.flush()


def header_list(headers: dict) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


async def call(method="POST", body=b"", headers=None, query=b"", host="bot.example.com"):
    if headers is None:
        headers = wa.signed_headers(SECRET, body) | {"Content-Type": "application/json"}
    headers = {"Host": host, "Content-Length": str(len(body))} | headers
    communicator = HttpCommunicator(
        application, method, URL + (("?" + query.decode()) if query else ""), body=body
    )
    communicator.scope["headers"] = header_list(headers)
    communicator.scope["query_string"] = query
    response = await communicator.get_response(timeout=10)
    # The app goes on after answering (the wakes): let it finish, as daphne does, before the
    # communicator is dropped (dropping it cancels the app).
    await communicator.wait(timeout=10)
    response["text"] = response["body"].decode()
    response["headers"] = {name.lower(): value for name, value in response["headers"]}
    return response


async def post_message(text="oi", **kwargs):
    body = wa.encode(wa.notification([wa.text_message(SENDER, text)]))
    return body, await call(body=body, **kwargs)


async def stored() -> int:
    return await sync_to_async(Message.objects.count)()


async def test_it_stores_a_signed_message_answers_200_and_wakes_the_worker(inbound):
    _body, response = await post_message("minha internet caiu")
    assert response["status"] == 200
    assert response["text"] == "ok"
    assert response["headers"][b"content-length"] == b"2"
    message = await sync_to_async(Message.objects.get)()
    assert (message.text, message.state) == ("minha internet caiu", Message.State.PENDING)
    assert await inbound() == [events.wake_event(message.conversation_id)]


@pytest.mark.live
async def test_it_stores_on_postgresql_and_wakes_through_redis(
    live_database_url, live_redis_url, inbound
):
    from channels_redis.core import RedisChannelLayer
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi"), wa.text_message(SENDER, "2")]))
    assert (await call(body=body))["status"] == 200
    assert (await call(body=body))["status"] == 200  # Meta's retry: stored once, woken once
    # A unit of work, which gives its connection back: one left open in sync_to_async's thread
    # kept PostgreSQL from dropping the test database at the end of the session.
    messages = await in_thread(list)(Message.objects.order_by("id"))
    assert [m.text for m in messages] == ["oi", "2"]
    assert await inbound() == [events.wake_event(messages[0].conversation_id)]


async def test_it_answers_before_it_wakes_the_worker(monkeypatch):
    seen = []

    async def wake(conversation_id):
        seen.append("wake")
        return True

    async def receive():
        return {"type": "http.request", "body": body}

    async def send(message):
        seen.append(message["type"])

    monkeypatch.setattr(events, "asend_wake", wake)
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    headers = [(b"host", b"bot.example.com"), *header_list(wa.signed_headers(SECRET, body))]
    scope = {"type": "http", "method": "POST", "path": URL, "query_string": b"", "headers": headers}
    await WhatsAppWebhookApp()(scope, receive, send)
    assert seen == ["http.response.start", "http.response.body", "wake"]


async def test_it_tells_the_staff_desk_after_answering(monkeypatch):
    seen = []

    async def wake(conversation_id):
        seen.append("wake")
        return True

    async def tell_staff(payload):
        seen.append((payload["event"], payload["data"]["direction"]))

    async def receive():
        return {"type": "http.request", "body": body}

    async def send(message):
        seen.append(message["type"])

    monkeypatch.setattr(events, "asend_wake", wake)
    monkeypatch.setattr(events, "asend_to_staff", tell_staff)
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    headers = [(b"host", b"bot.example.com"), *header_list(wa.signed_headers(SECRET, body))]
    scope = {"type": "http", "method": "POST", "path": URL, "query_string": b"", "headers": headers}
    await WhatsAppWebhookApp()(scope, receive, send)
    assert seen == ["http.response.start", "http.response.body", "wake", ("message", "in")]


async def test_it_skips_the_browser_middleware():
    _body, response = await post_message()
    assert response["status"] == 200
    assert b"x-frame-options" not in response["headers"]  # XFrameOptionsMiddleware
    assert b"set-cookie" not in response["headers"]


async def test_it_stores_a_duplicate_delivery_once_and_wakes_once(inbound):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    assert (await call(body=body))["status"] == 200
    assert (await call(body=body))["status"] == 200
    assert await stored() == 1
    assert len(await inbound()) == 1


async def test_it_answers_200_when_the_wake_is_lost(monkeypatch):
    async def lost(conversation_id):
        return False

    monkeypatch.setattr(events, "asend_wake", lost)
    _body, response = await post_message()
    assert response["status"] == 200  # stored: the sweeper wakes it
    assert await stored() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "md5=abc"},
    ],
    ids=["missing", "wrong", "malformed"],
)
async def test_it_refuses_a_bad_signature_with_403_and_stores_nothing(headers, inbound):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    response = await call(body=body, headers=headers)
    assert (response["status"], response["text"]) == (403, "forbidden")
    assert await stored() == 0
    assert await inbound() == []


async def test_it_refuses_everything_without_an_app_secret(settings):
    settings.WHATSAPP_APP_SECRET = ""
    _body, response = await post_message()
    assert response["status"] == 403
    assert await stored() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "bad request: body is not JSON"),
        (b"\xff\xfe", "bad request: body is not UTF-8"),
        (b"[]", "bad request"),
        (b'{"object": "page", "entry": []}', "bad request"),
    ],
    ids=["not-json", "not-utf8", "not-an-object", "not-whatsapp"],
)
async def test_it_refuses_a_body_that_is_not_a_notification_with_400(body, reason):
    response = await call(body=body)
    assert response["status"] == 400
    assert response["text"].startswith(reason)
    assert await stored() == 0


async def test_it_answers_413_from_the_declared_length_without_storing():
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    headers = wa.signed_headers(SECRET, body) | {"Content-Length": str(MAX_BODY_BYTES + 1)}
    response = await call(body=body, headers=headers)
    assert response["status"] == 413
    assert await stored() == 0


async def test_it_answers_413_to_an_oversize_body_that_lies_about_its_length():
    body = b"x" * (MAX_BODY_BYTES + 10)
    headers = wa.signed_headers(SECRET, body) | {"Content-Length": "10"}
    assert (await call(body=body, headers=headers))["status"] == 413


async def test_it_answers_400_to_a_content_length_that_is_not_a_number():
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    headers = wa.signed_headers(SECRET, body) | {"Content-Length": "lots"}
    response = await call(body=body, headers=headers)
    assert (response["status"], response["text"]) == (400, "bad Content-Length")
    assert await stored() == 0


async def test_it_refuses_a_host_outside_allowed_hosts():
    _body, response = await post_message(host="evil.example.net")
    assert response["status"] == 400
    assert await stored() == 0


async def test_it_allows_local_hosts_under_debug_without_allowed_hosts(settings):
    settings.DEBUG, settings.ALLOWED_HOSTS = True, []
    _body, response = await post_message(host="127.0.0.1:8000")
    assert response["status"] == 200


async def test_it_answers_405_to_other_methods():
    response = await call(method="PUT", body=b"{}", headers={})
    assert response["status"] == 405


async def test_it_answers_the_verification_handshake():
    query = b"hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
    response = await call(method="GET", headers={}, query=query)
    assert (response["status"], response["text"]) == (200, "1158201444")


async def test_it_refuses_a_handshake_with_the_wrong_token():
    query = b"hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444"
    response = await call(method="GET", headers={}, query=query)
    assert (response["status"], response["text"]) == (403, "forbidden")


async def test_it_answers_500_and_logs_when_storing_fails(caplog):
    with (
        caplog.at_level(logging.ERROR),
        mock.patch(
            "conversations.webhook.asgi_app.ingest_notification",
            side_effect=RuntimeError("db down"),
        ),
    ):
        _body, response = await post_message("meu CPF é 529.982.247-25")
    assert response["status"] == 500  # Meta delivers it again later
    assert "webhook failed" in caplog.text
    assert "529.982.247-25" not in caplog.text


async def test_it_logs_no_message_text_or_number(caplog):
    with caplog.at_level(logging.DEBUG):
        await post_message("meu CPF é 529.982.247-25")
    assert "529.982.247-25" not in caplog.text
    assert SENDER not in caplog.text


async def test_it_sends_nothing_when_the_client_disconnects_before_its_body():
    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "query_string": b"",
        "headers": [(b"host", b"bot.example.com")],
    }
    communicator = ApplicationCommunicator(WhatsAppWebhookApp(), scope)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=5)
    assert await communicator.receive_nothing()
    assert await stored() == 0


async def test_it_reads_a_body_sent_in_chunks():
    body = wa.encode(wa.notification([wa.text_message(SENDER, "em partes")]))
    headers = wa.signed_headers(SECRET, body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "query_string": b"",
        "headers": [(b"host", b"bot.example.com"), *header_list(headers)],
    }
    communicator = ApplicationCommunicator(WhatsAppWebhookApp(), scope)
    half = len(body) // 2
    await communicator.send_input({"type": "http.request", "body": body[:half], "more_body": True})
    await communicator.send_input({"type": "http.request", "body": body[half:]})
    start = await communicator.receive_output(timeout=10)
    assert start["status"] == 200
    message = await sync_to_async(Message.objects.get)()
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == (
        message.provider_id
    )
