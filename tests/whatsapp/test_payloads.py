import json
import logging
from datetime import UTC, datetime

import pytest

from conversations.whatsapp.payloads import (
    InboundMessage,
    PayloadError,
    StatusUpdate,
    extract_text,
    parse_notification,
)
from tests.fakes import whatsapp_payloads as wa

SENDER = "5511987654321"
OLD_FORM = "551187654321"


def parse_one(item: dict) -> InboundMessage:
    result = parse_notification(wa.notification([item]))
    assert result.skipped == 0
    (message,) = result.messages
    return message


def test_it_parses_the_documented_sample():
    body = json.loads(
        '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{'
        '"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",'
        '"phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},'
        '"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",'
        '"timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},'
        '"field":"messages"}]}]}'
    )
    result = parse_notification(body)
    (message,) = result.messages
    assert message == InboundMessage(
        wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        wa_id="16505551234",
        type="text",
        text="Does it come in another color?",
        from_number="16505551234",
        profile_name="Sheena Nelson",
        sent_at=datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC),
        raw=body["entry"][0]["changes"][0]["value"]["messages"][0],
    )
    assert [c.profile_name for c in result.contacts] == ["Sheena Nelson"]
    assert result.statuses == []


@pytest.mark.parametrize(
    ("item", "kind", "text"),
    [
        (wa.text_message(SENDER, "Olá, sem internet"), "text", "Olá, sem internet"),
        (wa.media_message(SENDER, "image", caption="foto do modem"), "image", "foto do modem"),
        (wa.media_message(SENDER, "image"), "image", ""),
        (wa.media_message(SENDER, "video", caption="luz piscando"), "video", "luz piscando"),
        (wa.media_message(SENDER, "audio"), "audio", ""),
        (wa.media_message(SENDER, "sticker"), "sticker", ""),
        (
            wa.media_message(SENDER, "document", caption="meu boleto", filename="boleto.pdf"),
            "document",
            "meu boleto\nboleto.pdf",
        ),
        (wa.media_message(SENDER, "document", filename="boleto.pdf"), "document", "boleto.pdf"),
        (
            wa.location_message(SENDER, name="Casa", address="Rua A, 1"),
            "location",
            "Casa\nRua A, 1",
        ),
        (wa.location_message(SENDER), "location", ""),
        (wa.contacts_message(SENDER, ["Ana Souza", "João"]), "contacts", "Ana Souza, João"),
        (wa.reaction_message(SENDER, "👍"), "reaction", "👍"),
        (wa.interactive_message(SENDER, "Segunda via"), "interactive", "Segunda via"),
        (
            wa.interactive_message(SENDER, "Suporte técnico", kind="list_reply"),
            "interactive",
            "Suporte técnico",
        ),
        (wa.button_message(SENDER, "Quero falar"), "button", "Quero falar"),
        (wa.unsupported_message(SENDER), "unsupported", ""),
        (wa.future_message(SENDER, "hologram"), "hologram", ""),
    ],
)
def test_it_extracts_the_text_of_every_message_type(item, kind, text):
    message = parse_one(item)
    assert message.type == kind
    assert message.text == text
    assert message.raw == item
    assert message.wamid == item["id"]


def test_it_reads_contact_card_names_without_formatted_name():
    item = wa.contacts_message(SENDER, ["x"])
    item["contacts"] = [{"name": {"first_name": "Ana", "last_name": "Lima"}}, "not a card"]
    assert parse_one(item).text == "Ana Lima"


@pytest.mark.parametrize(
    ("kind", "item"),
    [
        ("text", {"text": "not an object"}),
        ("text", {"text": {"body": 42}}),
        ("image", {"image": None}),
        ("document", {"document": {"caption": ["x"], "filename": {"a": 1}}}),
        ("location", {"location": []}),
        ("contacts", {"contacts": {"name": "x"}}),
        ("interactive", {"interactive": {"type": "nfm_reply", "nfm_reply": {}}}),
        ("button", {"button": "Quero"}),
        ("reaction", {}),
    ],
)
def test_it_extracts_empty_text_from_odd_type_bodies(kind, item):
    assert extract_text(kind, item) == ""


def test_it_keeps_a_long_unknown_type_within_the_column():
    message = parse_one(wa.future_message(SENDER, "x" * 60))
    assert message.type == "x" * 32
    assert message.raw["type"] == "x" * 60


def test_it_normalises_the_sender_and_keeps_the_number_as_sent():
    item = wa.text_message(OLD_FORM, "oi")
    message = parse_one(item)
    assert message.wa_id == SENDER
    assert message.from_number == OLD_FORM
    assert message.reply_wa_id == OLD_FORM


def test_it_matches_the_profile_name_across_both_forms_of_a_number():
    body = wa.notification(
        [wa.text_message(OLD_FORM, "oi")], contacts=[wa.contact(SENDER, "Maria")]
    )
    (message,) = parse_notification(body).messages
    assert message.profile_name == "Maria"


def test_it_reads_every_entry_change_message_and_status():
    first = wa.change([wa.text_message(SENDER, "1"), wa.text_message("5521987651234", "2")])
    second = wa.change(statuses=[wa.status("wamid.OUT1", "read")])
    third = wa.change([wa.media_message("16505551234", "image")])
    body = wa.notification(changes=[first, second])
    body["entry"].append({"id": "2", "changes": [third]})
    result = parse_notification(body)
    assert [m.text for m in result.messages] == ["1", "2", ""]
    assert result.statuses == [
        StatusUpdate(
            wamid="wamid.OUT1",
            status="read",
            recipient_id="5511987654321",
            timestamp=result.statuses[0].timestamp,
        )
    ]
    assert len(result.contacts) == 3


def test_it_reads_failed_statuses_with_their_errors():
    errors = [{"code": 131047, "title": "Re-engagement message"}]
    body = wa.notification(statuses=[wa.status("wamid.OUT", "failed", errors=errors)])
    (status,) = parse_notification(body).statuses
    assert status.status == "failed"
    assert status.errors == errors


@pytest.mark.parametrize(
    "broken",
    [
        lambda m: m.pop("id"),
        lambda m: m.pop("from"),
        lambda m: m.pop("type"),
        lambda m: m.update(id=""),
        lambda m: m.update(id=123),
        lambda m: m.update(id="w" * 256),
        lambda m: m.update(type=None),
        lambda m: m.update({"from": "not a number"}),
        lambda m: m.update({"from": 5511987654321}),
    ],
)
def test_it_skips_a_message_missing_fields_and_keeps_the_rest(broken, caplog):
    bad = wa.text_message("5511999990000", "meu CPF é 529.982.247-25")
    broken(bad)
    good = [wa.text_message(SENDER, "1"), wa.text_message(SENDER, "2")]
    with caplog.at_level(logging.WARNING):
        result = parse_notification(wa.notification([good[0], bad, good[1]], contacts=[]))
    assert [m.text for m in result.messages] == ["1", "2"]
    assert result.skipped == 1
    assert "skipped" in caplog.text
    assert "529.982" not in caplog.text and "5511999990000" not in caplog.text


def test_it_skips_items_that_are_not_objects_and_statuses_without_fields():
    body = wa.notification(
        ["text", None, wa.text_message(SENDER, "ok")],
        statuses=[{"id": "wamid.X"}, {"status": "read"}, 7, wa.status("wamid.Y", "sent")],
        contacts=[],
    )
    result = parse_notification(body)
    assert [m.text for m in result.messages] == ["ok"]
    assert [s.wamid for s in result.statuses] == ["wamid.Y"]
    assert result.skipped == 5


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        None,
        42,
        {},
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {}},
        {"object": "whatsapp_business_account", "entry": ["x"]},
        {"object": "whatsapp_business_account", "entry": [{"changes": {}}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [1]}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": []}]}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": {"messages": {}}}]}],
        },
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": {"statuses": "x"}}]}],
        },
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": {"contacts": 1}}]}],
        },
    ],
)
def test_it_refuses_bodies_that_are_not_cloud_api_notifications(body):
    with pytest.raises(PayloadError):
        parse_notification(body)


def test_it_accepts_an_empty_notification():
    result = parse_notification({"object": "whatsapp_business_account", "entry": []})
    assert result.messages == [] and result.statuses == [] and result.skipped == 0


@pytest.mark.parametrize("timestamp", ["soon", None, "9" * 30, [1]])
def test_it_treats_an_odd_timestamp_as_unknown(timestamp):
    item = wa.text_message(SENDER, "oi")
    item["timestamp"] = timestamp
    assert parse_one(item).sent_at is None


def test_it_replaces_characters_postgresql_cannot_store():
    item = wa.text_message(SENDER, "a\x00b\ud800c")
    item["extra\x00"] = ["\udfff"]
    message = parse_one(item)
    assert message.text == "a\ufffdb?c"
    assert message.raw["extra\ufffd"] == ["?"]
    json.dumps(message.raw).encode("utf-8")


@pytest.mark.parametrize("kind", ["audio", "image", "document", "video"])
def test_it_keeps_the_media_id_mime_type_and_sha256_of_media(kind):
    message = parse_one(
        wa.media_message(SENDER, kind, media_id="987", mime_type="audio/ogg", sha256="abc=")
    )
    assert (message.media_id, message.media_mime_type, message.media_sha256) == (
        "987",
        "audio/ogg",
        "abc=",
    )


def test_it_ignores_the_media_of_a_sticker_and_an_id_too_long_to_store():
    assert parse_one(wa.media_message(SENDER, "sticker", media_id="987")).media_id == ""
    too_long = parse_one(wa.media_message(SENDER, "audio", media_id="9" * 129))
    assert (too_long.media_id, too_long.media_status) == ("", "")


def test_it_marks_voice_notes_and_photos_for_the_worker_and_documents_for_staff():
    statuses = {
        kind: parse_one(wa.media_message(SENDER, kind)).media_status
        for kind in ("audio", "image", "document", "video", "sticker")
    }
    assert statuses == {
        "audio": "pending",
        "image": "pending",
        "document": "on_demand",
        "video": "on_demand",
        "sticker": "",
    }
