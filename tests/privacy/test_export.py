"""The export (conversations.privacy.export): everything held about a person, as JSON."""

import json

import pytest

from conversations.privacy import export
from conversations.privacy.export import build_export, export_json
from tests.fakes.privacy import CPF, NAME, NUMBER, REPLY, TEXT, TRANSCRIPT, person  # noqa: F401

pytestmark = pytest.mark.django_db


def test_it_exports_the_customer_conversations_messages_and_everything_else(person):
    (exported,) = json.loads(export_json([person.customer]))["people"]
    assert exported["customer"]["whatsapp_number"] == NUMBER
    assert exported["customer"]["document"] == CPF
    assert exported["customer"]["profile_name"] == NAME
    (conversation,) = exported["conversations"]
    texts = [m["text"] for m in conversation["messages"]]
    assert TEXT in texts[0] and REPLY in texts
    reply = conversation["messages"][2]
    assert (reply["direction"], reply["delivery_status"]) == ("out", "read")
    assert reply["sent_at"] and reply["stored_at"]
    assert exported["transcripts"][0]["transcript"] == TRANSCRIPT
    assert exported["media_files"] == [
        {
            "message_id": person.voice.pk,
            "type": "audio",
            "file": person.media_name,
            "sent_at": exported["media_files"][0]["sent_at"],
        }
    ]
    assert exported["outage_notices"][0]["outage"] == "OLT-3"
    assert exported["handoffs"][0]["source"] == "tool"
    (ticket,) = exported["tickets"]
    assert ticket["protocol"] == "2026-000123"
    assert ticket["description"] == TEXT


def test_it_exports_sections_that_other_models_register(person, monkeypatch):
    monkeypatch.setitem(export.SECTIONS, "loyalty", lambda customer: {"points": customer.pk})
    (exported,) = build_export([person.customer])["people"]
    assert exported["loyalty"] == {"points": person.customer.pk}


def test_it_exports_an_erased_customer_as_the_empty_rows_that_are_left(person):
    from conversations.privacy.erase import erase

    erase([person.customer], actor="test")
    person.customer.refresh_from_db()
    (exported,) = build_export([person.customer])["people"]
    assert exported["customer"]["document"] == ""
    assert {m["text"] for m in exported["conversations"][0]["messages"]} == {""}
    assert exported["transcripts"] == [] and exported["media_files"] == []
