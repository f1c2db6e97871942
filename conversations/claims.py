"""The inbound queue of record: pending -> processing (claimed by a turn) -> answered/failed/skipped.

Plain synchronous ORM functions, each one unit of work; the engine runs them in threads via
`in_thread`. Every state change is a conditional update on the expected state, so a claim that
someone else moved (the sweeper reset it, say) is never overwritten.
"""

import functools
from collections.abc import Callable
from datetime import datetime
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.utils import timezone

from conversations.models import Conversation, Message, Turn

P = ParamSpec("P")
R = TypeVar("R")

IN = Message.Direction.INBOUND
PENDING = Message.State.PENDING
PROCESSING = Message.State.PROCESSING


def in_thread(fn: Callable[P, R]) -> Callable[P, "R"]:
    """Run a blocking function on the loop's default executor, recycling DB connections.

    thread_sensitive=False: turns of different conversations must not queue behind one thread.
    Pool threads live long, so each unit of work drops connections that are broken or too old.
    """

    @functools.wraps(fn)
    def unit_of_work(*args, **kwargs):
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(unit_of_work, thread_sensitive=False)


def _pending(conversation_id: int):
    return Message.objects.filter(conversation_id=conversation_id, direction=IN, state=PENDING)


def load_conversation(conversation_id: int) -> Conversation | None:
    return Conversation.objects.select_related("customer").filter(pk=conversation_id).first()


def pending_span(conversation_id: int) -> tuple[datetime | None, datetime | None]:
    """(oldest, newest) arrival time of the conversation's pending inbound messages."""
    times = list(
        _pending(conversation_id).order_by("created_at").values_list("created_at", flat=True)
    )
    if not times:
        return None, None
    return times[0], times[-1]


def has_pending(conversation_id: int) -> bool:
    return _pending(conversation_id).exists()


def skip_pending(conversation_id: int) -> int:
    """A person handles the conversation: its messages are stored and shown, never answered."""
    return _pending(conversation_id).update(state=Message.State.SKIPPED, updated_at=timezone.now())


def start_turn(conversation_id: int, *, lock_wait_ms: int, debounce_wait_ms: int) -> Turn:
    return Turn.objects.create(
        conversation_id=conversation_id,
        lock_wait_ms=lock_wait_ms,
        debounce_wait_ms=debounce_wait_ms,
    )


def claim_pending(turn: Turn) -> list[Message]:
    """Claim every pending inbound message of the turn's conversation, in order, for this turn.

    Returns the newly claimed messages (oldest first). Only the lock holder claims, but the
    update is still conditional: a message that left `pending` meanwhile is not taken.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            _pending(turn.conversation_id).order_by("created_at", "id").values_list("id", flat=True)
        )
        if ids:
            Message.objects.filter(id__in=ids, state=PENDING).update(
                state=PROCESSING, claimed_at=now, turn=turn, updated_at=now
            )
    return list(
        Message.objects.filter(id__in=ids, turn=turn, state=PROCESSING).order_by("created_at", "id")
    )


def claims_intact(turn: Turn, expected: int) -> bool:
    """True while every message claimed by the turn is still ours (the sweeper did not reset it)."""
    return Message.objects.filter(turn=turn, state=PROCESSING).count() == expected


def finish_batch(turn: Turn, state: str, reason: str = "") -> int:
    return Message.objects.filter(turn=turn, state=PROCESSING).update(
        state=state, failure_reason=reason[:255], updated_at=timezone.now()
    )


def history(conversation_id: int, turn: Turn, batch_ids: list[int], window: int) -> list[Message]:
    """The last `window` messages before this batch: settled inbound ones and what we sent.

    Leaves out the batch itself, other turns' in-flight messages and this turn's own notices.
    """
    rows = (
        Message.objects.filter(conversation_id=conversation_id)
        .exclude(id__in=batch_ids)
        .exclude(direction=IN, state__in=[PENDING, PROCESSING])
        .exclude(direction=Message.Direction.OUTBOUND, turn=turn)
        .exclude(direction=Message.Direction.OUTBOUND, delivery_status=Message.Delivery.FAILED)
        .order_by("-created_at", "-id")[:window]
    )
    return list(reversed(rows))


def hand_to_human(conversation_id: int, reason: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(
        handler=Conversation.Handler.HUMAN, handoff_reason=reason[:255], updated_at=timezone.now()
    )


def handler_of(conversation_id: int) -> str | None:
    return Conversation.objects.filter(pk=conversation_id).values_list("handler", flat=True).first()


def finish_turn(turn: Turn, **fields) -> None:
    fields["finished_at"] = timezone.now()
    Turn.objects.filter(pk=turn.pk).update(**fields)
