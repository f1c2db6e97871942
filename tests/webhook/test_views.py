import json
import logging
from unittest import mock

import pytest
from channels.exceptions import ChannelFull
from channels.testing import HttpCommunicator
from django.core.asgi import get_asgi_application

from conversations.models import Customer, Message
from conversations.webhook.views import MAX_BODY_BYTES
from conversations.whatsapp.signature import sign_body, verify_signature
from tests.fakes import whatsapp_payloads as wa

pytestmark = pytest.mark.django_db

URL = "/webhooks/whatsapp/"
SECRET = "test-app-secret"
SENDER = "5511987654321"


@pytest.fixture(autouse=True)
def whatsapp_settings(settings):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.WHATSAPP_VERIFY_TOKEN = "verify-me"
    return settings


@pytest.fixture
def send_wake():
    with mock.patch("conversations.events.send_wake", return_value=True) as patched:
        yield patched


def post(client, body: bytes, headers=None, **extra):
    if headers is None:
        headers = wa.signed_headers(SECRET, body)
    return client.post(URL, data=body, content_type="application/json", headers=headers, **extra)


def post_json(client, payload) -> object:
    return post(client, wa.encode(payload))


def nothing_stored():
    return not Message.objects.exists() and not Customer.objects.exists()


# Handshake


def test_it_answers_the_handshake_with_the_challenge(client):
    response = client.get(
        URL,
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-mé", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        {"hub.verify_token": "verify-me", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me"},
        {"hub_mode": "subscribe", "hub_verify_token": "verify-me", "hub_challenge": "1"},
        {},
    ],
)
def test_it_refuses_a_handshake_with_bad_or_missing_params(client, params):
    response = client.get(URL, params)
    assert response.status_code == 403
    assert b"1" not in response.content


def test_it_refuses_every_handshake_without_a_configured_token(client, whatsapp_settings):
    whatsapp_settings.WHATSAPP_VERIFY_TOKEN = ""
    response = client.get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_it_allows_only_get_and_post(client, method):
    assert getattr(client, method)(URL).status_code == 405


# Signatures


def test_it_stores_a_message_with_a_good_signature(client):
    response = post_json(client, wa.notification([wa.text_message(SENDER, "sem internet")]))
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.text, message.state, message.conversation.customer.wa_id) == (
        "sem internet",
        "pending",
        SENDER,
    )


def test_it_accepts_an_upper_case_hex_signature(client):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    header = "sha256=" + sign_body(SECRET, body).removeprefix("sha256=").upper()
    assert post(client, body, {"X-Hub-Signature-256": header}).status_code == 200


def test_it_refuses_a_signature_made_with_another_secret(client):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    assert post(client, body, wa.signed_headers("another-secret", body)).status_code == 403
    assert nothing_stored()


@pytest.mark.parametrize(
    "header",
    [
        "sha256=" + "0" * 64,
        "",
        "sha256=",
        "sha256=abc",
        "sha1=" + "0" * 40,
        "SHA256=" + "0" * 64,
        "sha256=" + "g" * 64,
        "sha256=" + "0" * 65,
        "0" * 64,
        "sha256=ççç",
    ],
)
def test_it_refuses_a_malformed_signature_and_stores_nothing(client, header):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    assert post(client, body, {"X-Hub-Signature-256": header}).status_code == 403
    assert nothing_stored()


@pytest.mark.parametrize("body", [b"not json", b"[]", b"x" * 100])
def test_it_checks_the_signature_before_parsing(client, body):
    assert post(client, body, {"X-Hub-Signature-256": "sha256=" + "0" * 64}).status_code == 403
    assert post(client, body, headers={}).status_code == 403


def test_it_refuses_a_missing_signature_and_stores_nothing(client, caplog):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    with caplog.at_level(logging.WARNING):
        assert post(client, body, headers={}).status_code == 403
    assert nothing_stored()
    assert "missing signature" in caplog.text


def test_it_refuses_a_signature_of_another_body(client):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    other = wa.encode(wa.notification([wa.text_message(SENDER, "tchau")]))
    assert post(client, other, wa.signed_headers(SECRET, body)).status_code == 403
    assert nothing_stored()


@pytest.mark.parametrize("secret", ["", None])
def test_it_refuses_everything_without_a_configured_app_secret(client, whatsapp_settings, secret):
    whatsapp_settings.WHATSAPP_APP_SECRET = secret
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    assert post(client, body, wa.signed_headers(b"", body)).status_code == 403
    assert nothing_stored()


def test_it_verifies_unusual_whitespace_and_escapes_over_the_raw_bytes(client):
    wamid = wa.new_wamid()
    body = (
        '{ "object" :\t"whatsapp_business_account",\r\n  "entry": [ {"id":"1", "changes":[\n'
        ' {"field":"messages", "value": {"messaging_product":"whatsapp",\n'
        '   "contacts": [{"profile":{"name":"Jos\\u00e9"},"wa_id":"5511987654321"}],\n'
        '   "messages" : [ {"from":"5511987654321","id":"' + wamid + '","timestamp":"1749416383",'
        '"type":"text","text":{"body":"Ol\\u00e1 \\ud83d\\ude00 \\"aspas\\" \\/ \\u00e7\\u00e3o"}} ] } } ] } ]   \n}\n'
    ).encode("ascii")
    # Re-serialising would produce other bytes: a signature over those must not verify.
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    assert post(client, body, wa.signed_headers(SECRET, reserialised)).status_code == 403
    assert post(client, body).status_code == 200
    message = Message.objects.get()
    assert message.text == 'Olá 😀 "aspas" / ção'
    assert message.conversation.customer.profile_name == "José"


def test_sign_body_is_hmac_sha256_of_the_raw_bytes():
    # The RFC 4231-style well-known vector for HMAC-SHA256.
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign_body("key", body) == expected
    assert sign_body(b"key", body) == expected
    assert verify_signature("key", body, expected)
    assert not verify_signature("key", body + b" ", expected)
    assert not verify_signature("", body, sign_body("", body))


# Malformed input


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b'{"object": "whatsapp_business_account", "entry": [}',
        b'\xff\xfe{"object": "whatsapp_business_account", "entry": []}',
        '{"object": "whatsapp_business_account", "entry": [], "x": "é"}'.encode("latin-1"),
        '{"object": "whatsapp_business_account", "entry": []}'.encode("utf-16"),
        b"[]",
        b'[{"object": "whatsapp_business_account", "entry": []}]',
        b'"whatsapp_business_account"',
        b"null",
        b'{"object": "whatsapp_business_account"}',
        b'{"entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": {"value": {}}}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": {}}}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [], "n": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_it_answers_400_to_malformed_bodies_and_stores_nothing(client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert nothing_stored()


def test_it_stores_nothing_from_a_wrongly_shaped_body_that_also_holds_good_messages(client):
    payload = wa.notification([wa.text_message(SENDER, "oi")])
    payload["entry"].append({"changes": [{"value": {"messages": "broken"}}]})
    assert post_json(client, payload).status_code == 400
    assert nothing_stored()


def test_it_answers_413_to_a_body_over_3_mb_and_stores_nothing(client):
    payload = wa.notification([wa.text_message(SENDER, "x" * MAX_BODY_BYTES)])
    body = wa.encode(payload)
    assert post(client, body).status_code == 413
    assert nothing_stored()


def test_it_answers_413_from_the_declared_length_without_reading_the_body(client):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    response = post(client, body, CONTENT_LENGTH=str(MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert nothing_stored()


async def test_it_answers_413_to_an_oversize_body_sent_without_a_length():
    # Over ASGI (as under daphne) a chunked body has no Content-Length: the bytes read decide.
    body = b"x" * (MAX_BODY_BYTES + 1)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-hub-signature-256", sign_body(SECRET, body).encode()),
    ]
    communicator = HttpCommunicator(get_asgi_application(), "POST", URL, body=body, headers=headers)
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 413


def test_it_accepts_a_body_just_under_3_mb(client):
    payload = wa.notification([wa.text_message(SENDER, "")])
    overhead = len(wa.encode(payload))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "x" * (
        MAX_BODY_BYTES - overhead
    )
    body = wa.encode(payload)
    assert len(body) == MAX_BODY_BYTES
    assert post(client, body).status_code == 200
    assert len(Message.objects.get().text) == MAX_BODY_BYTES - overhead


# Storing


def test_it_stores_a_duplicate_delivery_once(client):
    body = wa.encode(wa.notification([wa.text_message(SENDER, "oi")]))
    assert post(client, body).status_code == 200
    assert post(client, body).status_code == 200
    assert Message.objects.count() == 1


def test_it_stores_a_wamid_repeated_inside_one_batch_once(client):
    item = wa.text_message(SENDER, "oi")
    assert post_json(client, wa.notification([item, dict(item), item])).status_code == 200
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("item", "kind", "text"),
    [
        (wa.text_message(SENDER, "oi"), "text", "oi"),
        (wa.media_message(SENDER, "image", caption="modem"), "image", "modem"),
        (wa.media_message(SENDER, "audio"), "audio", ""),
        (wa.media_message(SENDER, "video", caption="vídeo"), "video", "vídeo"),
        (wa.media_message(SENDER, "document", filename="a.pdf"), "document", "a.pdf"),
        (wa.media_message(SENDER, "sticker"), "sticker", ""),
        (wa.location_message(SENDER, name="Casa"), "location", "Casa"),
        (wa.contacts_message(SENDER, ["Ana"]), "contacts", "Ana"),
        (wa.reaction_message(SENDER, "❤️"), "reaction", "❤️"),
        (wa.interactive_message(SENDER, "Sim"), "interactive", "Sim"),
        (wa.interactive_message(SENDER, "Planos", kind="list_reply"), "interactive", "Planos"),
        (wa.button_message(SENDER, "Parar"), "button", "Parar"),
        (wa.unsupported_message(SENDER), "unsupported", ""),
        (wa.future_message(SENDER, "hologram"), "hologram", ""),
    ],
)
def test_it_stores_every_message_type(client, item, kind, text):
    assert post_json(client, wa.notification([item])).status_code == 200
    message = Message.objects.get()
    assert (message.type, message.text, message.raw, message.provider_id) == (
        kind,
        text,
        item,
        item["id"],
    )


def test_it_stores_the_rest_of_a_batch_when_one_message_lacks_fields(client):
    broken = wa.text_message(SENDER, "sem id")
    del broken["id"]
    messages = [wa.text_message(SENDER, "1"), broken, wa.text_message("5521987651234", "2")]
    assert post_json(client, wa.notification(messages)).status_code == 200
    assert sorted(Message.objects.values_list("text", flat=True)) == ["1", "2"]


def test_it_applies_statuses_and_ignores_unknown_ids(client):
    post_json(client, wa.notification([wa.text_message(SENDER, "oi")]))
    conversation = Message.objects.get().conversation
    Message.objects.create(
        conversation=conversation, direction="out", provider_id="wamid.OUT", delivery_status="sent"
    )
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    statuses = [
        wa.status("wamid.OUT", "read"),
        wa.status("wamid.OUT", "delivered"),
        wa.status("wamid.OUT", "failed", errors=errors),
        wa.status("wamid.UNKNOWN", "failed", errors=errors),
    ]
    assert post_json(client, wa.notification(statuses=statuses)).status_code == 200
    out = Message.objects.get(provider_id="wamid.OUT")
    assert (out.delivery_status, out.delivery_errors) == ("read", [])
    assert not Message.objects.filter(provider_id="wamid.UNKNOWN").exists()


def test_it_wakes_each_conversation_once_after_storing(
    client, send_wake, django_capture_on_commit_callbacks
):
    messages = [wa.text_message(SENDER, "1"), wa.text_message(SENDER, "2")]
    with django_capture_on_commit_callbacks(execute=True):
        assert post_json(client, wa.notification(messages)).status_code == 200
    send_wake.assert_called_once_with(Message.objects.first().conversation_id)


def test_it_answers_200_when_the_wake_is_lost(client, django_capture_on_commit_callbacks):
    layer = mock.Mock()
    layer.send = mock.AsyncMock(side_effect=ChannelFull())
    with (
        mock.patch("conversations.events.get_channel_layer", return_value=layer),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post_json(client, wa.notification([wa.text_message(SENDER, "oi")]))
    assert response.status_code == 200
    layer.send.assert_awaited_once()
    # The message is safe in the database; the sweeper re-wakes it.
    assert Message.objects.get().state == "pending"


def test_it_logs_outcomes_without_personal_data(client, caplog):
    cpf_text = "meu cpf 529.982.247-25"
    good = wa.notification([wa.text_message(SENDER, cpf_text)])
    broken = wa.text_message("5521987651234", cpf_text)
    del broken["type"]
    with caplog.at_level(logging.DEBUG):
        assert post_json(client, good).status_code == 200
        assert post_json(client, wa.notification([broken])).status_code == 200
        assert post(client, b"[]").status_code == 400
        assert post(client, b"{}", headers={}).status_code == 403
    assert "1 stored" in caplog.text
    assert "skipped" in caplog.text
    for secret in (SENDER, "5521987651234", "529.982", "cpf"):
        assert secret not in caplog.text
