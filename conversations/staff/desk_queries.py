"""What the desk shows: the inbox's queues with their counts and search, and one conversation's
pane (transcript with notes and turn records, customer panel, composer state). Reads only."""

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.masking import mask_document, mask_phone
from conversations.models import CannedReply, Conversation, Customer, Message, StaffNote
from conversations.phone import normalise_wa_id
from conversations.staff.admin_customers import format_document
from conversations.staff.media_view import MEDIA_PERMISSION, message_media_html
from conversations.whatsapp.window import REPLY_WINDOW
from crm_gateway.lookup import lookup_points
from crm_gateway.models import Ticket
from crm_gateway.outages import active_outages_for

FULL_DOCUMENT = "conversations.view_full_document"
QUEUE_LIMIT = 100
TRANSCRIPT_LIMIT = 300
OPEN, HUMAN, BOT = Conversation.Status.OPEN, Conversation.Handler.HUMAN, Conversation.Handler.BOT

QUEUES = (
    ("waiting", _("Waiting for a person")),
    ("mine", _("Mine")),
    ("bot", _("With the assistant")),
    ("resolved", _("Resolved conversations")),
)


def queue_filter(name: str, user) -> Q:
    return {
        "waiting": Q(status=OPEN, handler=HUMAN, assigned_to=None),
        "mine": Q(status=OPEN, handler=HUMAN, assigned_to=user),
        "bot": Q(status=OPEN, handler=BOT),
        "resolved": ~Q(status=OPEN),
    }[name]


def queue_order(name: str) -> list:
    if name == "waiting":  # the longest wait first
        return [Coalesce("handoff_at", "updated_at").asc(), "pk"]
    if name == "resolved":
        return [F("closed_at").desc(nulls_last=True), "-pk"]
    return ["-updated_at", "-pk"]


def search_customers(term: str) -> Q:
    """Name, number (punctuated or not, with or without the ninth digit) or CPF/CNPJ."""
    term = term.strip()
    found = Q(customer__profile_name__icontains=term)
    compact = re.sub(r"[^0-9A-Za-z]", "", term).upper()
    digits = re.sub(r"\D", "", term)
    if len(compact) >= 3:
        found |= Q(customer__document__contains=compact)
    if len(digits) >= 3:
        found |= Q(customer__wa_id__contains=digits) | Q(customer__reply_wa_id__contains=digits)
        with contextlib.suppress(ValueError):  # too short or long for a number
            found |= Q(customer__wa_id=normalise_wa_id(digits))
    return found


@dataclass
class Row:
    conversation: Conversation
    name: str
    number: str
    waiting_since: datetime | None

    @property
    def waiting_under_a_minute(self) -> bool:
        """Django's timesince says "0 minutos" then; the queue says "less than a minute"."""
        since = self.waiting_since
        return since is not None and timezone.now() - since < timedelta(minutes=1)


def show_number(customer: Customer, user) -> str:
    return customer.wa_id if user.has_perm(FULL_DOCUMENT) else mask_phone(customer.wa_id)


def show_document(customer: Customer, user) -> str:
    if not customer.document:
        return ""
    if user.has_perm(FULL_DOCUMENT):
        return format_document(customer.document)
    return mask_document(customer.document)


def queues(user, term: str = "") -> list[dict]:
    """Every queue with its count and its first rows (search narrows them all)."""
    base: QuerySet = Conversation.objects.select_related("customer", "assigned_to")
    if term.strip():
        base = base.filter(search_customers(term))
    counts = base.aggregate(
        **{name: Count("pk", filter=queue_filter(name, user)) for name, _ in QUEUES}
    )
    result = []
    for name, label in QUEUES:
        matching = base.filter(queue_filter(name, user))
        rows = [
            Row(
                c,
                c.customer.profile_name or show_number(c.customer, user),
                show_number(c.customer, user),
                (c.handoff_at or c.updated_at) if name == "waiting" else None,
            )
            for c in matching.order_by(*queue_order(name))[:QUEUE_LIMIT]
        ]
        result.append({"name": name, "label": label, "count": counts[name], "rows": rows})
    return result


@dataclass
class Entry:
    """One bubble: a message or a private note, in time order."""

    at: datetime
    role: str  # customer, assistant, staff, note
    text: str
    message: Message | None = None
    note: StaffNote | None = None
    media: str = ""  # safe HTML: player, thumbnail or link, for staff who may open media


def _role(message: Message) -> str:
    if message.direction == Message.Direction.INBOUND:
        return "customer"
    return "staff" if message.kind == Message.Kind.STAFF else "assistant"


def transcript(conversation: Conversation, with_media: bool = False) -> list[Entry]:
    messages = (
        conversation.messages.select_related("turn")
        .defer("raw")
        .order_by("-created_at", "-id")[:TRANSCRIPT_LIMIT]
    )
    entries = [
        Entry(
            m.created_at,
            _role(m),
            m.text,
            message=m,
            media=message_media_html(m) if with_media else "",
        )
        for m in messages
    ]
    notes = conversation.notes.select_related("author").order_by("-created_at")[:TRANSCRIPT_LIMIT]
    entries += [Entry(n.created_at, "note", n.text, note=n) for n in notes]
    return sorted(entries, key=lambda e: e.at)


def crm_panel(customer: Customer) -> dict:
    """Installation points and the active outages on their regions (cached CRM lookup)."""
    if not customer.document:
        return {"status": "no_document", "points": [], "outages": []}
    result = lookup_points(customer.document)
    regions = [str(point.get("region", "")) for point in result.points]
    return {
        "status": result.status,
        "points": result.points,
        "outages": active_outages_for(regions),
    }


def window_seconds_left(conversation: Conversation) -> int:
    if conversation.last_inbound_at is None:
        return 0
    left = conversation.last_inbound_at + REPLY_WINDOW - timezone.now()
    return max(0, int(left.total_seconds()))


def canned_replies(customer: Customer) -> list[dict]:
    first_name = (customer.profile_name or "").split(" ")[0]
    return [
        {"shortcut": reply.shortcut, "text": reply.render(first_name)}
        for reply in CannedReply.objects.all()[:200]
    ]


def pane(conversation: Conversation, user) -> dict:
    customer = conversation.customer
    return {
        "conversation": conversation,
        "entries": transcript(conversation, with_media=user.has_perm(MEDIA_PERMISSION)),
        "name": customer.profile_name,
        "number": show_number(customer, user),
        "document": show_document(customer, user),
        "crm": crm_panel(customer),
        "earlier": customer.conversations.exclude(pk=conversation.pk).order_by("-created_at")[:20],
        "tickets": Ticket.objects.filter(conversation__customer=customer).order_by("-created_at")[
            :20
        ],
        "window_left": window_seconds_left(conversation),
        "canned": canned_replies(customer),
    }
