"""The inbound queue of record: pending -> processing (claimed by a turn) -> answered/failed/skipped.

Plain synchronous ORM functions, each one unit of work that the engine runs in a worker thread
via `in_thread` (a turn makes about eight such hops). Every state change is a conditional update
on the expected state, so a claim that someone else moved (the sweeper reset it) is never
overwritten.
"""

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from conversations.models import Conversation, Message, Turn

P = ParamSpec("P")
R = TypeVar("R")

IN = Message.Direction.INBOUND
OUT = Message.Direction.OUTBOUND
PENDING = Message.State.PENDING
PROCESSING = Message.State.PROCESSING
BOT = Conversation.Handler.BOT


def in_thread(fn: Callable[P, R]) -> Callable[P, "R"]:
    """Run a blocking function on the loop's default executor as one unit of work.

    thread_sensitive=False: turns of different conversations must not queue behind one thread.
    Before and after, drop the thread's connection as Django does around a request: on
    PostgreSQL it goes back to the pool (settings.DATABASES), so connections stay bounded by the
    pool size, not by the number of threads.
    """

    @functools.wraps(fn)
    def unit_of_work(*args, **kwargs):
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(unit_of_work, thread_sensitive=False)


_io_executor: ThreadPoolExecutor | None = None
_io_lock = threading.Lock()


def _slow_io_executor() -> ThreadPoolExecutor:
    global _io_executor
    with _io_lock:
        if _io_executor is None:
            _io_executor = ThreadPoolExecutor(
                settings.WORKER_MAX_TURNS, thread_name_prefix="supportbot-slow-io"
            )
        return _io_executor


def in_io_thread(fn: Callable[P, R]) -> Callable[P, "R"]:
    """Run a slow blocking call (the CRM lookup, a Cloud API call) as one unit of work.

    These take seconds, so they get their own pool, sized to WORKER_MAX_TURNS (one per turn in
    flight): on the short-unit pool a burst of new customers would queue behind WORKER_THREADS
    CRM calls. They close their database connection when done, so PostgreSQL connections stay
    bounded by WORKER_THREADS; a reconnect is nothing next to a CRM call.
    """

    @functools.wraps(fn)
    def unit_of_work(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(unit_of_work, thread_sensitive=False, executor=_slow_io_executor())


def _pending(conversation_id: int):
    return Message.objects.filter(conversation_id=conversation_id, direction=IN, state=PENDING)


_PENDING_HERE = Q(
    messages__direction=IN, messages__state=PENDING
)  # a conversation's pending inbound messages, for annotations


@dataclass
class Peek:
    conversation: Conversation | None  # None: it does not exist
    oldest: datetime | None = None  # arrival of the oldest / newest pending message
    newest: datetime | None = None

    @property
    def handler(self) -> str | None:
        return self.conversation.handler if self.conversation else None


# Built once: resolving the filtered aggregates is most of peek's CPU. Never evaluated itself;
# each peek filters a clone of it.
_PEEK = Conversation.objects.select_related("customer").annotate(
    oldest_pending=Min("messages__created_at", filter=_PENDING_HERE),
    newest_pending=Max("messages__created_at", filter=_PENDING_HERE),
)


def peek(conversation_id: int) -> Peek:
    """The conversation (with its customer) and the arrival span of its pending messages, in
    one query.

    While a person handles it the pending messages are marked skipped here: stored and shown,
    never answered by the bot.
    """
    # filter(pk=...) matches at most one row: no ORDER BY/LIMIT needed (unlike first()).
    conversation = next(iter(_PEEK.filter(pk=conversation_id)), None)
    if conversation is None:
        return Peek(None)
    if conversation.oldest_pending is None:
        return Peek(conversation)
    if conversation.handler != BOT:
        _pending(conversation_id).update(state=Message.State.SKIPPED, updated_at=timezone.now())
        return Peek(conversation)
    return Peek(conversation, conversation.oldest_pending, conversation.newest_pending)


# The hot queries of every turn (the claim, the checks after the reply and after settling or
# releasing, the history below) in plain SQL: building and compiling them through the ORM costs
# several times the query itself. Every value is a query parameter; the table names are the
# models' own (checked right below).
_HAS_PENDING_SQL = (
    "SELECT 1 FROM conversations_message"
    " WHERE conversation_id = %s AND direction = %s AND state = %s LIMIT 1"
)
_AFTER_REPLY_SQL = (
    "SELECT c.handler,"
    " (SELECT COUNT(*) FROM conversations_message m"
    "  WHERE m.conversation_id = c.id AND m.direction = %s AND m.state = %s),"
    " (SELECT COUNT(*) FROM conversations_message m"
    "  WHERE m.conversation_id = c.id AND m.turn_id = %s AND m.state = %s)"
    " FROM conversations_conversation c WHERE c.id = %s"
)
_PENDING_SQL = (
    "SELECT * FROM conversations_message"
    " WHERE conversation_id = %s AND direction = %s AND state = %s ORDER BY created_at, id"
)
# Conditional: only messages still pending are claimed, only ones still ours are settled.
_CLAIM_SQL = (
    "UPDATE conversations_message SET state = %s, claimed_at = %s, turn_id = %s, updated_at = %s"
    " WHERE state = %s AND id IN ({ids})"
)
_FINISH_BATCH_SQL = (
    "UPDATE conversations_message SET state = %s, failure_reason = %s, updated_at = %s"
    " WHERE turn_id = %s AND state = %s"
)
assert Message._meta.db_table == "conversations_message"
assert Conversation._meta.db_table == "conversations_conversation"


def has_pending(conversation_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_HAS_PENDING_SQL, [conversation_id, IN.value, PENDING.value])
        return cursor.fetchone() is not None


def claim_pending(turn: Turn) -> list[Message]:
    """Claim every pending inbound message of the turn's conversation, in order, for this turn.

    Returns the newly claimed messages, oldest first. Only the lock holder claims, but the
    update is still conditional: a message that left `pending` meanwhile is not taken.
    """
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        batch = list(
            Message.objects.raw(_PENDING_SQL, [turn.conversation_id, IN.value, PENDING.value])
        )
        if not batch:
            return []
        ids = [m.pk for m in batch]
        stamp = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL.format(ids=", ".join(["%s"] * len(ids))),
                [PROCESSING.value, stamp, turn.pk, stamp, PENDING.value, *ids],
            )
            claimed = cursor.rowcount
    if claimed != len(batch):  # someone moved one meanwhile: read back what is really ours
        batch = list(
            Message.objects.filter(id__in=ids, turn=turn, state=PROCESSING).order_by(
                "created_at", "id"
            )
        )
    for message in batch:
        message.state, message.claimed_at, message.turn, message.updated_at = (
            PROCESSING,
            now,
            turn,
            now,
        )
    return batch


@dataclass
class Begun:
    turn: Turn
    batch: list[Message]
    transcript: list[dict] = field(default_factory=list)  # filled by the engine


def begin_turn(conversation_id: int, *, lock_wait_ms: int, debounce_wait_ms: int) -> Begun | None:
    """Create the turn and claim its batch (one commit); None when nothing was left to claim."""
    with transaction.atomic():
        turn = Turn.objects.create(
            conversation_id=conversation_id,
            lock_wait_ms=lock_wait_ms,
            debounce_wait_ms=debounce_wait_ms,
        )
        batch = claim_pending(turn)
        if not batch:
            transaction.set_rollback(True)
            return None
    return Begun(turn, batch)


@dataclass
class AfterReply:
    new_pending: bool  # messages arrived while the reply was prepared
    claims_intact: bool  # every message of the batch is still claimed by this turn
    handler: str | None


def after_reply(turn: Turn, batch_size: int) -> AfterReply:
    """What changed while the reply was prepared, in one query."""
    params = [IN.value, PENDING.value, turn.pk, PROCESSING.value, turn.conversation_id]
    with connection.cursor() as cursor:
        cursor.execute(_AFTER_REPLY_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return AfterReply(False, False, None)
    handler, pending, claimed = row
    return AfterReply(pending > 0, claimed == batch_size, handler)


def finish_batch(turn: Turn, state: str, reason: str = "") -> int:
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_BATCH_SQL, [str(state), reason[:255], stamp, turn.pk, PROCESSING.value]
        )
        return cursor.rowcount


# history()'s query, written out for the same reason as the checks above (the ORM's own SQL for
# the filter chain it replaces, including the IS NOT NULL that keeps rows without a turn).
_HISTORY_SQL = (
    "SELECT * FROM conversations_message"
    " WHERE conversation_id = %s{not_batch}"
    " AND NOT (direction = %s AND state IN (%s, %s))"
    " AND NOT (direction = %s AND turn_id = %s AND turn_id IS NOT NULL)"
    " AND NOT (direction = %s AND delivery_status = %s)"
    " ORDER BY created_at DESC, id DESC LIMIT %s"
)


def history(conversation_id: int, turn: Turn, batch_ids: list[int], window: int) -> list[Message]:
    """The last `window` messages before this batch: settled inbound ones and what we sent.

    Leaves out the batch itself, other turns' in-flight messages, this turn's own notices and
    messages that never reached the customer.
    """
    if window <= 0:
        return []
    batch_ids = [int(pk) for pk in batch_ids]
    not_batch = f" AND NOT (id IN ({', '.join(['%s'] * len(batch_ids))}))" if batch_ids else ""
    params = [
        conversation_id,
        *batch_ids,
        IN.value,
        PENDING.value,
        PROCESSING.value,
        OUT.value,
        turn.pk,
        OUT.value,
        Message.Delivery.FAILED.value,
        window,
    ]
    rows = Message.objects.raw(_HISTORY_SQL.format(not_batch=not_batch), params)
    return list(reversed(list(rows)))


def hand_to_human(conversation_id: int, reason: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(
        handler=Conversation.Handler.HUMAN, handoff_reason=reason[:255], updated_at=timezone.now()
    )


def finish_turn(turn: Turn, *, started: float | None = None, **fields) -> None:
    """Record the turn's outcome and timings; `started` (monotonic) gives total_ms."""
    if started is not None:
        fields["total_ms"] = max(0, round((time.monotonic() - started) * 1000))
    fields["finished_at"] = timezone.now()
    Turn.objects.filter(pk=turn.pk).update(**fields)


def settle(
    turn: Turn,
    *,
    batch_state: str = "",
    reason: str = "",
    handoff: str = "",
    started: float | None = None,
    **fields,
) -> Peek | None:
    """End a turn in one commit: the batch's state, a handoff to a person, the turn record.

    Returns a fresh peek at the conversation, the loop's next look for pending messages, or None
    when nothing is pending (the usual case: a cheap check spares the full peek's query).
    """
    with transaction.atomic():
        if handoff:
            hand_to_human(turn.conversation_id, handoff)
        if batch_state:
            finish_batch(turn, batch_state, reason)
        finish_turn(turn, started=started, **fields)
    if not has_pending(turn.conversation_id):
        return None
    return peek(turn.conversation_id)
