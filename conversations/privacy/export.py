"""The export (LGPD art. 18 II and V, art. 19): everything we hold about a person, as JSON.

One section per kind of data, each a function of the customer registered in SECTIONS: a new
model that holds a customer's data adds its section with @section("name") and is exported.
"""

import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.forms.models import model_to_dict
from django.utils import timezone

from conversations.models import Conversation, Customer, Message
from crm_gateway.models import OutageNotice, Ticket

FORMAT = "supportbot.lgpd-export/1"
SECTIONS: dict[str, Callable[[Customer], object]] = {}


def section(name: str):
    def register(build: Callable[[Customer], object]):
        SECTIONS[name] = build
        return build

    return register


@section("customer")
def _customer(customer: Customer) -> dict:
    return {
        "id": customer.pk,
        "whatsapp_number": customer.wa_id,
        "reply_number": customer.reply_wa_id,
        "profile_name": customer.profile_name,
        "document": customer.document,
        "first_seen_at": customer.first_seen_at,
        "last_seen_at": customer.last_seen_at,
    }


def _message(message: Message) -> dict:
    return {
        "id": message.pk,
        "direction": message.direction,
        "type": message.type,
        "kind": message.kind,
        "text": message.text,
        "transcript": message.transcript,
        "media_file": message.media_file.name or None,
        "sent_at": message.sent_at,
        "stored_at": message.created_at,
        "state": message.state,
        "delivery_status": message.delivery_status,
        "delivery_errors": message.delivery_errors,
        "raw": message.raw,
        "erased_at": message.redacted_at,
    }


def _conversations(customer: Customer):
    return Conversation.objects.filter(customer=customer).order_by("created_at", "pk")


@section("conversations")
def _conversations_with_messages(customer: Customer) -> list[dict]:
    by_conversation: dict[int, list[dict]] = {}
    messages = Message.objects.filter(conversation__customer=customer).order_by("created_at", "pk")
    for message in messages.iterator(chunk_size=500):
        by_conversation.setdefault(message.conversation_id, []).append(_message(message))
    return [
        {
            "id": conversation.pk,
            "status": conversation.status,
            "handler": conversation.handler,
            "opened_at": conversation.created_at,
            "last_customer_message_at": conversation.last_inbound_at,
            "closed_at": conversation.closed_at,
            "messages": by_conversation.get(conversation.pk, []),
        }
        for conversation in _conversations(customer)
    ]


@section("transcripts")
def _transcripts(customer: Customer) -> list[dict]:
    voice = Message.objects.filter(conversation__customer=customer).exclude(transcript="")
    return [
        {"message_id": m.pk, "transcript": m.transcript, "sent_at": m.sent_at}
        for m in voice.order_by("created_at", "pk")
    ]


@section("media_files")
def _media_files(customer: Customer) -> list[dict]:
    media = Message.objects.filter(conversation__customer=customer).exclude(media_file="")
    return [
        {"message_id": m.pk, "type": m.type, "file": m.media_file.name, "sent_at": m.sent_at}
        for m in media.order_by("created_at", "pk")
    ]


@section("outage_notices")
def _outage_notices(customer: Customer) -> list[dict]:
    notices = OutageNotice.objects.filter(conversation__customer=customer).select_related("outage")
    return [
        {
            "conversation_id": notice.conversation_id,
            "outage": notice.outage.title,
            "message": notice.outage.message,
            "sent_at": notice.sent_at,
        }
        for notice in notices.order_by("sent_at", "pk")
    ]


@section("handoffs")
def _handoffs(customer: Customer) -> list[dict]:
    handed = _conversations(customer).exclude(handoff_at=None, handoff_reason="")
    return [
        {
            "conversation_id": c.pk,
            "reason": c.handoff_reason,
            "source": c.handoff_source,
            "at": c.handoff_at,
            "assigned": c.assigned_to_id is not None,
            "first_staff_reply_at": c.first_staff_reply_at,
        }
        for c in handed
    ]


@section("tickets")
def _tickets(customer: Customer) -> list[dict]:
    """The tickets the assistant opened in their conversations."""
    rows = Ticket.objects.filter(conversation__customer=customer).order_by("pk")
    return [model_to_dict(row) for row in rows]


def build_export(customers: list[Customer]) -> dict:
    return {
        "format": FORMAT,
        "exported_at": timezone.now(),
        "people": [{name: build(c) for name, build in SECTIONS.items()} for c in customers],
    }


def export_json(customers: list[Customer]) -> str:
    return json.dumps(build_export(customers), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)


def export_counts(customers: list[Customer]) -> dict:
    """What the audit entry says of an export: how many people, conversations and messages."""
    return {
        "customers": len(customers),
        "conversations": Conversation.objects.filter(customer__in=customers).count(),
        "messages": Message.objects.filter(conversation__customer__in=customers).count(),
    }
