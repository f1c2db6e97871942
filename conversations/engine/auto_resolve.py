"""Auto-resolve: an open conversation with no activity for the runtime setting's hours is
resolved by the worker's periodic pass (conversations.engine.sweeper.sweep_once). Conversations
waiting for a person are skipped unless the setting says otherwise, and so is any conversation
with a message still queued for the assistant. Nobody is told: the customer's next message
starts a new conversation with the assistant (conversations.webhook.ingest)."""

import logging
from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from conversations.events import notify_staff_on_commit
from conversations.models import Conversation, Message
from conversations.runtime import get_runtime

logger = logging.getLogger(__name__)

BATCH = 500  # per pass; the next pass takes the rest


def quiet_conversations(now=None):
    runtime = get_runtime()
    now = now or timezone.now()
    cutoff = now - timedelta(hours=runtime.auto_resolve_hours)
    unanswered = Message.objects.filter(
        conversation=OuterRef("pk"),
        direction=Message.Direction.INBOUND,
        state__in=[Message.State.PENDING, Message.State.PROCESSING],
    )
    quiet = Conversation.objects.filter(
        status=Conversation.Status.OPEN, updated_at__lt=cutoff
    ).exclude(Exists(unanswered))
    if not runtime.auto_resolve_waiting:
        quiet = quiet.exclude(handler=Conversation.Handler.HUMAN, assigned_to=None)
    return quiet, cutoff


def auto_resolve(*, dry_run: bool = False) -> list[int]:
    """Resolve the quiet conversations; returns their ids. Each update is conditional, so a
    message that arrives meanwhile (it touches updated_at) keeps its conversation open."""
    quiet, cutoff = quiet_conversations()
    ids = list(quiet.order_by("updated_at").values_list("pk", flat=True)[:BATCH])
    if dry_run:
        return ids
    resolved = []
    for conversation_id in ids:
        now = timezone.now()
        done = Conversation.objects.filter(
            pk=conversation_id, status=Conversation.Status.OPEN, updated_at__lt=cutoff
        ).update(status=Conversation.Status.CLOSED, closed_at=now, updated_at=now)
        if done:
            resolved.append(conversation_id)
            notify_staff_on_commit("resolved", conversation_id, auto=1)
    if resolved:
        logger.info("auto-resolved %d quiet conversations", len(resolved))
    return resolved
