import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from conversations.models import Conversation, Customer, Message
from conversations.threads import in_thread
from conversations.whatsapp import sender
from conversations.whatsapp.signature import verify_signature
from supportbot.asgi import application

NUMBER = "5511987650001"


def socket(path: str, origin: str = "http://127.0.0.1:8000") -> WebsocketCommunicator:
    """A client of the full ASGI application (routing, auth middleware, consumer)."""
    return WebsocketCommunicator(application, path, headers=[(b"origin", origin.encode())])


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    settings.WHATSAPP_ACCESS_TOKEN = ""  # console sender
    settings.WHATSAPP_APP_SECRET = "simulator-test-secret"
    return settings


def prepare(client, **data):
    body = {"wa_id": NUMBER, "name": "Cliente Simulado", "text": "Minha internet caiu"} | data
    return client.post("/simulator/send/", json.dumps(body), content_type="application/json")


def deliver(client, prepared: dict):
    """What the page does with /simulator/send/'s answer: post the signed bytes to the webhook."""
    return client.generic(
        "POST",
        prepared["url"],
        prepared["body"].encode("utf-8"),
        content_type="application/json",
        headers={prepared["header"]: prepared["signature"]},
    )


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", [("get", "/simulator/"), ("post", "/simulator/send/")])
def test_it_404s_every_view_when_debug_is_off(client, settings, method, path):
    settings.DEBUG = False
    assert getattr(client, method)(path).status_code == 404


@pytest.mark.django_db
def test_it_renders_the_page_when_debug_is_on(client, debug):
    response = client.get("/simulator/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-send-url="/simulator/send/"' in page
    assert "/ws/simulator/" in page
    assert "csrfmiddlewaretoken" in page
    assert "<script src" not in page and "<link" not in page  # no external assets


@pytest.mark.django_db
def test_it_refuses_get_on_the_send_endpoint(client, debug):
    assert client.get("/simulator/send/").status_code == 405


@pytest.mark.django_db
def test_it_signs_a_cloud_api_webhook_that_the_webhook_stores(client, debug):
    response = prepare(client)
    assert response.status_code == 200
    prepared = response.json()
    assert prepared["url"] == "/webhooks/whatsapp/"
    assert prepared["header"] == "X-Hub-Signature-256"
    assert verify_signature(
        debug.WHATSAPP_APP_SECRET, prepared["body"].encode(), prepared["signature"]
    )
    payload = json.loads(prepared["body"])
    item = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    assert item["type"] == "text" and item["text"] == {"body": "Minha internet caiu"}
    assert item["id"] == prepared["wamid"]

    assert deliver(client, prepared).status_code == 200

    message = Message.objects.get(provider_id=prepared["wamid"])
    assert message.direction == Message.Direction.INBOUND
    assert message.text == "Minha internet caiu"
    assert message.state == Message.State.PENDING
    assert message.conversation.customer.wa_id == NUMBER
    assert message.conversation.customer.profile_name == "Cliente Simulado"


@pytest.mark.django_db
def test_it_sends_the_number_as_typed_and_the_webhook_normalises_it(client, debug):
    prepared = prepare(client, wa_id="+55 (11) 8765-0001").json()  # no ninth digit
    assert prepared["wa_id"] == NUMBER
    item = json.loads(prepared["body"])["entry"][0]["changes"][0]["value"]["messages"][0]
    assert item["from"] == "551187650001"
    assert deliver(client, prepared).status_code == 200
    assert Customer.objects.get().wa_id == NUMBER


@pytest.mark.django_db
def test_it_explains_when_there_is_no_app_secret_to_sign_with(client, debug):
    debug.WHATSAPP_APP_SECRET = ""
    response = prepare(client)
    assert response.status_code == 503
    assert "WHATSAPP_APP_SECRET" in response.json()["error"]


@pytest.mark.django_db
def test_a_tampered_simulated_webhook_is_refused(client, debug):
    prepared = prepare(client).json()
    prepared["body"] = prepared["body"].replace("caiu", "voltou")
    assert deliver(client, prepared).status_code == 403
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,error",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"wa_id": "abc", "text": "oi"}).encode(), "not a WhatsApp number"),
        (json.dumps({"wa_id": NUMBER, "text": "   "}).encode(), "type a message"),
        (json.dumps({"wa_id": NUMBER, "text": "x" * 4097}).encode(), "limited"),
        (json.dumps({"wa_id": NUMBER, "text": "oi", "name": "n" * 257}).encode(), "limited"),
    ],
    ids=["not-json", "not-object", "bad-number", "empty-text", "long-text", "long-name"],
)
def test_it_rejects_bad_input(client, debug, body, error):
    response = client.post("/simulator/send/", body, content_type="application/json")
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert not Message.objects.exists()


def make_conversation(wa_id: str = NUMBER) -> Conversation:
    customer = Customer.objects.create(wa_id=wa_id, reply_wa_id=wa_id)
    return Conversation.objects.create(customer=customer)


@pytest.mark.django_db(transaction=True)
async def test_the_socket_receives_outbound_messages_live(debug):
    conversation = await sync_to_async(make_conversation)()
    # The ninth-digit-less form joins the same customer's group.
    communicator = socket("/ws/simulator/551187650001/")
    try:
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_nothing(timeout=0.1)

        message = await sync_to_async(sender.send_text)(conversation, "Olá!", kind="reply")

        received = await communicator.receive_json_from(timeout=2)
        assert received["id"] == message.pk
        assert received["direction"] == "out"
        assert received["text"] == "Olá!"
        assert received["kind"] == "reply"
        assert received["delivery_status"] == "sent"
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reply_sent_from_a_workers_unit_of_work_reaches_the_socket_on_its_loop(
    debug, monkeypatch
):
    # The engine sends from conversations.threads units, where asgiref's async_to_sync cannot
    # find the worker's loop: it would run the channel layer on a new loop in a new thread.
    layer = get_channel_layer()
    group_send, loops = layer.group_send, []

    async def recording_group_send(group, message):
        loops.append(asyncio.get_running_loop())
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", recording_group_send)
    conversation = await sync_to_async(make_conversation)()
    communicator = socket(f"/ws/simulator/{NUMBER}/")
    try:
        connected, _ = await communicator.connect()
        assert connected
        message = await in_thread(sender.send_text)(conversation, "Da thread", kind="reply")
        received = await communicator.receive_json_from(timeout=2)
        assert received["id"] == message.pk
        assert received["text"] == "Da thread"
    finally:
        await communicator.disconnect()
    # The simulator's message and the staff desk's event, both on the worker's loop.
    assert loops and set(loops) == {asyncio.get_running_loop()}


@pytest.mark.django_db(transaction=True)
async def test_the_socket_does_not_receive_other_customers_messages(debug):
    other = await sync_to_async(make_conversation)("5511912340000")
    communicator = socket(f"/ws/simulator/{NUMBER}/")
    try:
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(sender.send_text)(other, "para outro", kind="reply")
        assert await communicator.receive_nothing(timeout=0.2)
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_starts_with_the_customers_history(debug):
    conversation = await sync_to_async(make_conversation)()
    first = await sync_to_async(Message.objects.create)(
        conversation=conversation, direction="in", provider_id="wamid.A", text="oi"
    )
    second = await sync_to_async(sender.send_text)(conversation, "Olá!", kind="reply")
    communicator = socket(f"/ws/simulator/{NUMBER}/")
    try:
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from())["id"] == first.pk
        assert (await communicator.receive_json_from())["id"] == second.pk
        assert await communicator.receive_nothing(timeout=0.1)
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_is_refused_when_debug_is_off(settings):
    settings.DEBUG = False
    communicator = socket(f"/ws/simulator/{NUMBER}/")
    try:
        connected, _ = await communicator.connect()
        assert not connected
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_is_refused_for_a_non_number(debug):
    communicator = socket("/ws/simulator/not-a-number/")
    try:
        connected, _ = await communicator.connect()
        assert not connected
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_is_refused_to_a_page_from_another_site(debug):
    communicator = socket(f"/ws/simulator/{NUMBER}/", origin="https://evil.example")
    try:
        connected, _ = await communicator.connect()
        assert not connected
    finally:
        await communicator.disconnect()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
async def test_the_socket_receives_messages_through_the_redis_channel_layer(debug, live_redis_url):
    """Production shape: the sender (a worker) and the socket (daphne) meet on Redis."""
    debug.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [live_redis_url], "prefix": "supportbot-test-simulator"},
        }
    }
    conversation = await sync_to_async(make_conversation)()
    communicator = socket(f"/ws/simulator/{NUMBER}/")
    try:
        connected, _ = await communicator.connect()
        assert connected
        message = await sync_to_async(sender.send_text)(conversation, "via redis", kind="reply")
        received = await communicator.receive_json_from(timeout=3)
        assert (received["id"], received["text"]) == (message.pk, "via redis")
    finally:
        await communicator.disconnect()
        # The ORM ran in asgiref's sync thread: close its connection so the test database can go.
        await sync_to_async(connections.close_all)()
