"""Store inbound WhatsApp messages exactly once and apply delivery statuses to our outbound ones.

The database is the queue of record: a message is committed (state pending) before any worker is
woken, and the unique wamid makes every redelivery a no-op.
"""

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from conversations import events
from conversations.masking import mask_phone
from conversations.models import Conversation, Customer, Message
from conversations.payloads import InboundMessage, Notification, StatusUpdate

logger = logging.getLogger(__name__)

Delivery = Message.Delivery
# The statuses each incoming status may replace: a status only moves forward
# (queued < sent < delivered < read). `failed` may follow queued, sent or delivered, never read
# (read proves the message arrived, so a later failed is stale) and is final: nothing replaces it.
_MAY_REPLACE = {
    Delivery.SENT: ["", Delivery.QUEUED],
    Delivery.DELIVERED: ["", Delivery.QUEUED, Delivery.SENT],
    Delivery.READ: ["", Delivery.QUEUED, Delivery.SENT, Delivery.DELIVERED],
    Delivery.FAILED: ["", Delivery.QUEUED, Delivery.SENT, Delivery.DELIVERED],
}


def store_inbound(item: InboundMessage, *, wake: bool = True) -> Message | None:
    """Store one inbound message as pending; None when its wamid is already stored (a duplicate).

    With `wake`, the worker is woken for its conversation once the transaction commits;
    `ingest_notification` passes False and wakes each conversation once per POST instead.
    """
    try:
        # Its own transaction (a savepoint inside a caller's): a duplicate rolls back everything
        # this delivery touched, the customer's last_seen_at and reply number included.
        with transaction.atomic():
            message = _store(item)
            if wake:
                events.wake_on_commit(message.conversation_id)
    except IntegrityError:
        # The unique wamid: another delivery of this message got there first (maybe racing us).
        if Message.objects.filter(provider_id=item.wamid).exists():
            logger.info("duplicate delivery of an inbound message ignored")
            return None
        raise
    return message


def _store(item: InboundMessage) -> Message:
    now = timezone.now()
    sent_at = item.sent_at or now
    customer_id = _upsert_customer(item, now)
    conversation_id = _open_conversation_id(customer_id)
    message = Message.objects.create(
        conversation_id=conversation_id,
        direction=Message.Direction.INBOUND,
        provider_id=item.wamid,
        type=item.type,
        text=item.text,
        raw=item.raw,
        state=Message.State.PENDING,
        sent_at=sent_at,
    )
    # Redeliveries can come late: the 24 h reply window starts at the newest message.
    Conversation.objects.filter(pk=conversation_id).update(
        last_inbound_at=Greatest(Coalesce(F("last_inbound_at"), sent_at), sent_at),
        updated_at=now,
    )
    return message


def _upsert_customer(item: InboundMessage, now) -> int:
    """One INSERT .. ON CONFLICT: it also locks the customer's row, so deliveries for one
    customer go through the rest of the transaction one at a time."""
    update_fields = ["reply_wa_id", "last_seen_at"]
    if item.profile_name:
        update_fields.append("profile_name")
    customer = Customer(
        wa_id=item.wa_id,
        reply_wa_id=item.reply_wa_id,
        profile_name=item.profile_name,
        last_seen_at=now,
    )
    (customer,) = Customer.objects.bulk_create(
        [customer], update_conflicts=True, unique_fields=["wa_id"], update_fields=update_fields
    )
    return customer.pk


def _open_conversation_id(customer_id: int) -> int:
    """The customer's open conversation, opened now if there is none."""
    open_ = Conversation.objects.filter(customer_id=customer_id, status=Conversation.Status.OPEN)
    # Only the id: this runs for every message, so no model instance and no ORDER BY.
    for conversation_id in open_.values_list("pk", flat=True)[:1]:
        return conversation_id
    try:
        with transaction.atomic():
            return Conversation.objects.create(customer_id=customer_id).pk
    except IntegrityError:
        # one_open_conversation_per_customer: someone else opened it first.
        return Conversation.objects.values_list("pk", flat=True).get(
            customer_id=customer_id, status=Conversation.Status.OPEN
        )


def apply_status(status: StatusUpdate) -> bool:
    """Move our outbound message's delivery status forward; False when nothing changed
    (unknown id, unknown status, or a status that would move it backwards)."""
    allowed = _MAY_REPLACE.get(status.status)
    if allowed is None:
        logger.info("status %r ignored: not one we track", status.status[:16])
        return False
    changes = {"delivery_status": status.status, "updated_at": timezone.now()}
    if status.status == Delivery.FAILED:
        changes["delivery_errors"] = status.errors
    # A conditional update: concurrent statuses cannot overwrite each other backwards.
    updated = Message.objects.filter(
        provider_id=status.wamid,
        direction=Message.Direction.OUTBOUND,
        delivery_status__in=allowed,
    ).update(**changes)
    return updated == 1


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    statuses_applied: int = 0
    statuses_ignored: int = 0
    conversation_ids: list[int] = field(default_factory=list)


def ingest_notification(notification: Notification) -> IngestResult:
    """Store every message (one transaction each), apply every status, then wake each
    conversation that got a new message once."""
    result = IngestResult()
    for item in notification.messages:
        message = store_inbound(item, wake=False)
        if message is None:
            result.duplicates += 1
            continue
        result.stored += 1
        if message.conversation_id not in result.conversation_ids:
            result.conversation_ids.append(message.conversation_id)
        logger.debug("stored inbound %s from %s", message.type, mask_phone(item.wa_id))
    for status in notification.statuses:
        if apply_status(status):
            result.statuses_applied += 1
        else:
            result.statuses_ignored += 1
    for conversation_id in result.conversation_ids:
        events.wake_on_commit(conversation_id)
    return result
