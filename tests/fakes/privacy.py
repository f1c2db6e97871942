"""A person with something of everything we hold (tests of conversations.privacy and its
commands): texts that name their CPF, a voice note's transcript, a stored media file, an outage
notice, a handoff, turns with figures, cached CRM answers for their document."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone

from conversations.models import Conversation, Customer, Message, Turn
from crm_gateway import keys
from crm_gateway.models import Outage, OutageNotice, Ticket

NUMBER = "5511987654321"
OLD_FORM_NUMBER = "551187654321"  # the same mobile without the ninth digit
CPF = "52998224725"
CPF_PUNCTUATED = "529.982.247-25"
NAME = "Maria Aparecida"
TEXT = "minha internet caiu de novo na rua das Acácias 42"
TRANSCRIPT = "oi aqui é a Maria a internet está lenta"
REPLY = "Sinto muito, Maria! Vou verificar a conexão da rua das Acácias."
WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDRjg4"
MEDIA_ID = "1187654321009876"  # Meta's id of the voice note: enough to fetch it again


@dataclass
class Person:
    customer: Customer
    conversation: Conversation
    inbound: Message
    voice: Message
    reply: Message
    turn: Turn
    media_name: str


def seed_person(media_root) -> Person:
    customer = Customer.objects.create(
        wa_id=NUMBER, reply_wa_id=OLD_FORM_NUMBER, profile_name=NAME, document=CPF
    )
    now = timezone.now()
    conversation = Conversation.objects.create(
        customer=customer,
        handler=Conversation.Handler.HUMAN,
        handoff_reason=f"cliente {NAME} pediu um atendente",
        handoff_source=Conversation.HandoffSource.TOOL,
        handoff_at=now,
        last_inbound_at=now,
    )
    turn = Turn.objects.create(
        conversation=conversation,
        outcome=Turn.Outcome.ANSWERED,
        batch_size=2,
        crm_ms=120,
        llm_ms=900,
        total_ms=1500,
    )
    inbound = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        provider_id=WAMID,
        text=f"{TEXT}, meu CPF é {CPF_PUNCTUATED}",
        raw={"from": NUMBER, "text": {"body": TEXT}},
        state=Message.State.ANSWERED,
        turn=turn,
        sent_at=now,
    )
    voice = Message(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        provider_id=WAMID + "VOICE",
        type="audio",
        transcript=TRANSCRIPT,
        raw={"from": NUMBER, "audio": {"id": "1"}},
        media_id=MEDIA_ID,
        state=Message.State.ANSWERED,
        turn=turn,
        sent_at=now,
    )
    voice.media_file.save("nota.ogg", ContentFile(b"OggS fake voice note"), save=False)
    voice.save()
    reply = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        provider_id="wamid.OUT" + WAMID[9:],
        kind=Message.Kind.REPLY,
        text=REPLY,
        delivery_status=Message.Delivery.READ,
        turn=turn,
        sent_at=now + timedelta(seconds=2),
    )
    Ticket.objects.create(
        protocol="2026-000123",
        category=Ticket.Category.NO_CONNECTION,
        point_id="PI-1001",
        description=TEXT,
        conversation=conversation,
        idempotency_key="privacy-fixture",
    )
    outage = Outage.objects.create(title="OLT-3", message="Rompimento de fibra", regions=["Sul"])
    OutageNotice.objects.create(outage=outage, conversation=conversation)
    cache.set(keys.points_key(CPF), {"status": "found", "points": [{"address": TEXT}]})
    cache.set(keys.stale_key(CPF), {"status": "found", "points": [{"address": TEXT}]})
    return Person(customer, conversation, inbound, voice, reply, turn, voice.media_file.name)


@pytest.fixture
def person(db, settings, tmp_path) -> Person:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return seed_person(settings.MEDIA_ROOT)


PERSONAL = (
    NUMBER,
    OLD_FORM_NUMBER,
    CPF,
    CPF_PUNCTUATED,
    NAME,
    TEXT,
    TRANSCRIPT,
    REPLY,
    MEDIA_ID,
    "Acácias",
)


def personal_data_in(text: str) -> list[str]:
    """Which of the person's data appear in `text` (a log, a database dump, an audit entry)."""
    return [value for value in PERSONAL if value in text]
