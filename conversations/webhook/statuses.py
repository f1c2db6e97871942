"""Delivery statuses (sent, delivered, read, failed) applied to our outbound messages: only ever
forward, the staff desk told of each change, and a failure for the closed 24-hour window handed
to a person."""

import logging

from django.utils import timezone

from conversations import events
from conversations.models import Message
from conversations.whatsapp.payloads import StatusUpdate
from conversations.whatsapp.window import hand_over_outside_window, is_re_engagement_error

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


def apply_status(status: StatusUpdate, told: list | None = None) -> bool:
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
    ours = Message.objects.filter(provider_id=status.wamid, direction=Message.Direction.OUTBOUND)
    updated = ours.filter(delivery_status__in=allowed).update(**changes)
    row = (
        ours.values_list("pk", "conversation_id").first() if updated else None
    )  # provider_id is unique
    if row is not None:
        pk, conversation_id = row
        if status.status == Delivery.FAILED and is_re_engagement_error(status.errors):
            # Refused because the 24-hour window had closed: the same handoff as a refused send.
            hand_over_outside_window(conversation_id, told)
        delivery = {"message_id": pk, "status": status.status}
        events.tell_staff(events.staff_event("delivery", conversation_id, **delivery), told)
    return updated == 1
