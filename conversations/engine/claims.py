"""The inbound queue of record: pending -> processing (claimed by a turn) -> answered/failed/skipped
(the last step: conversations.engine.turn_end).

Plain synchronous functions, each one unit of work that the engine runs in a worker thread
(conversations.threads). Every state change is a conditional update on the expected state, so
a claim that someone else moved (the sweeper reset it) is never overwritten.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from conversations import rows
from conversations.models import Conversation, Message, Turn

IN = Message.Direction.INBOUND
OUT = Message.Direction.OUTBOUND
PENDING = Message.State.PENDING
PROCESSING = Message.State.PROCESSING
BOT = Conversation.Handler.BOT


# Every statement that takes messages out of `pending` first locks their conversation's row, as
# ingest does before it checks whether an earlier message is pending (and then sends no wake):
# so a message stored without a wake is always committed before the claim that takes the earlier
# one, and is taken with it. On PostgreSQL each statement of a transaction sees what committed
# before it began (READ COMMITTED), so the claim after the lock sees that message. SQLite runs
# one writing transaction at a time, which gives the same order without the lock.
_LOCK_CONVERSATION_SQL = "SELECT id FROM conversations_conversation WHERE id = %s FOR NO KEY UPDATE"


def _lock_statements(conversation_id: int) -> list[rows.Statement]:
    if not connection.features.has_select_for_update:
        return []
    return [(_LOCK_CONVERSATION_SQL, [conversation_id])]


def lock_conversation(conversation_id: int) -> None:
    """Inside a transaction: lock the conversation's row until it ends (see above)."""
    with connection.cursor() as cursor:
        for sql, params in _lock_statements(conversation_id):
            cursor.execute(sql, params)


# The hot queries of every turn (the claim, the check after releasing, the history below) in
# plain SQL: building and compiling them through the ORM costs
# several times the query itself. Every value is a query parameter; the table names are the
# models' own (checked right below).
_HAS_PENDING_SQL = (
    "SELECT 1 FROM conversations_message"
    " WHERE conversation_id = %s AND direction = %s AND state = %s LIMIT 1"
)
_HAS_RECENT_PENDING_SQL = (
    "SELECT 1 FROM conversations_message WHERE conversation_id = %s AND direction = %s"
    " AND state = %s AND created_at >= %s LIMIT 1"
)
# Conditional: only messages still pending are claimed.
# RETURNING hands back exactly the rows this statement moved (PostgreSQL, SQLite >= 3.35).
_CLAIM_SQL = (
    "UPDATE conversations_message SET state = %s, claimed_at = %s, turn_id = %s, updated_at = %s"
    " WHERE conversation_id = %s AND direction = %s AND state = %s RETURNING *"
)
assert Message._meta.db_table == "conversations_message"
assert Conversation._meta.db_table == "conversations_conversation"


# A pending message younger than this is still on its way through its wake or a turn's
# debounce. An older one's wake was lost (Channels delivers at most once), or a running turn has
# not claimed it yet: one more wake then costs that turn nothing (it only tries the lock).
PENDING_GRACE_S = 5.0


def has_pending(conversation_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_HAS_PENDING_SQL, [conversation_id, IN.value, PENDING.value])
        return cursor.fetchone() is not None


def has_recent_pending(conversation_id: int) -> bool:
    """A pending message that arrived within PENDING_GRACE_S: its wake is still on its way."""
    with connection.cursor() as cursor:
        cursor.execute(
            _HAS_RECENT_PENDING_SQL,
            [conversation_id, IN.value, PENDING.value, recent_since()],
        )
        return cursor.fetchone() is not None


def recent_since():
    """The database value of the time PENDING_GRACE_S ago."""
    since = timezone.now() - timedelta(seconds=PENDING_GRACE_S)
    return connection.ops.adapt_datetimefield_value(since)


def claim_pending(turn: Turn) -> list[Message]:
    """Claim every pending inbound message of the turn's conversation, in order, for this turn.

    Returns the newly claimed messages, oldest first: one conditional UPDATE, so a message that
    left `pending` meanwhile is not taken, and the rows it returns are exactly the ones it moved.
    """
    with transaction.atomic():
        lock_conversation(turn.conversation_id)
        return _claim_pending(turn)


def _claim_pending(turn: Turn) -> list[Message]:
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [
        PROCESSING.value,
        stamp,
        turn.pk,
        stamp,
        turn.conversation_id,
        IN.value,
        PENDING.value,
    ]
    batch = list(Message.objects.raw(_CLAIM_SQL, params))
    batch.sort(key=lambda message: (message.created_at, message.pk))
    return batch


@dataclass
class Begun:
    turn: Turn
    batch: list[Message]
    history: list[Message] | None = None  # history() of the turn, when begin_turn read it
    transcript: list[dict] = field(default_factory=list)  # filled by the engine


def begin_turn(
    conversation_id: int, *, lock_wait_ms: int, debounce_wait_ms: int, history_window: int = 0
) -> Begun | None:
    """Create the turn and claim its batch (one commit); None when nothing was left to claim.

    On PostgreSQL the turn's history (the `history_window` last messages before it) comes in the
    same query; elsewhere Begun.history stays None (read it with history()).
    """
    turn = Turn(
        conversation_id=conversation_id,
        lock_wait_ms=lock_wait_ms,
        debounce_wait_ms=debounce_wait_ms,
    )
    if rows.one_query_allowed():
        return _begin_in_one_query(turn, history_window)
    with transaction.atomic():
        lock_conversation(conversation_id)
        turn.save(force_insert=True)
        batch = _claim_pending(turn)
        if not batch:
            transaction.set_rollback(True)
            return None
    return Begun(turn, batch)


# begin_turn on PostgreSQL: the conversation's lock, the turn's INSERT, the claim, taking the
# turn back when nothing was claimed, and the history, as one query (one round trip and one
# implicit transaction instead of six). lastval() is the turn's new id. Messages come back
# without their JSON fields, which stay deferred (from_db without converters; the engine never
# reads them).
_LIGHT = [f for f in Message._meta.concrete_fields if f.get_internal_type() != "JSONField"]
_LIGHT_COLUMNS = ", ".join(f.column for f in _LIGHT)
# {turn}: the turn's id, a parameter or, for a turn created in the same query, its lastval().
# (SELECT lastval()) is computed once; a bare lastval() is volatile, so the planner would
# evaluate it per row and could not use an index with it.
_CLAIM_LIGHT_SQL = (
    "UPDATE conversations_message SET state = %s, claimed_at = %s, turn_id = {turn},"  # noqa: S608 (as below)
    " updated_at = %s WHERE conversation_id = %s AND direction = %s AND state = %s"
    f" RETURNING {_LIGHT_COLUMNS}"
)
_NEW_TURN = "(SELECT lastval())"
_CLAIM_FOR_NEW_TURN_SQL = _CLAIM_LIGHT_SQL.format(turn=_NEW_TURN)
_CLAIM_FOR_TURN_SQL = _CLAIM_LIGHT_SQL.format(turn="%s")
_DROP_EMPTY_TURN_SQL = (
    "DELETE FROM conversations_turn t WHERE t.id = (SELECT lastval())"
    " AND NOT EXISTS (SELECT 1 FROM conversations_message m WHERE m.turn_id = t.id)"
)
# The turn's batch is `processing` by now, so the state condition leaves it out by itself.
_HISTORY_LIGHT_SQL = (
    f"SELECT {_LIGHT_COLUMNS} FROM conversations_message"  # noqa: S608 (as above)
    " WHERE conversation_id = %s"
    " AND NOT (direction = %s AND state IN (%s, %s))"
    " AND NOT (direction = %s AND turn_id = {turn} AND turn_id IS NOT NULL)"
    " AND NOT (direction = %s AND delivery_status = %s)"
    " ORDER BY created_at DESC, id DESC LIMIT %s"
)
_HISTORY_OF_NEW_TURN_SQL = _HISTORY_LIGHT_SQL.format(turn=_NEW_TURN)
_HISTORY_OF_TURN_SQL = _HISTORY_LIGHT_SQL.format(turn="%s")


def _history_light(conversation_id: int, turn_id: int | None, window: int) -> rows.Statement:
    """The history statement of a turn (None: the one created in the same query)."""
    turn = [] if turn_id is None else [turn_id]
    params = [conversation_id, IN.value, PENDING.value, PROCESSING.value, OUT.value, *turn]
    params += [OUT.value, Message.Delivery.FAILED.value, window]
    return (_HISTORY_OF_NEW_TURN_SQL if turn_id is None else _HISTORY_OF_TURN_SQL), params


def _light_messages(found: list[tuple]) -> list[Message]:
    names = [f.attname for f in _LIGHT]
    return [Message.from_db(connection.alias, names, row) for row in found]


def _begin_in_one_query(turn: Turn, history_window: int) -> Begun | None:
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    conversation_id = turn.conversation_id
    statements = [
        (_LOCK_CONVERSATION_SQL, [conversation_id]),
        rows.insert_statement(turn),
        (
            _CLAIM_FOR_NEW_TURN_SQL,
            [PROCESSING.value, stamp, stamp, conversation_id, IN.value, PENDING.value],
        ),
        (_DROP_EMPTY_TURN_SQL, []),
    ]
    if history_window > 0:
        statements.append(_history_light(conversation_id, None, history_window))
    _locked, inserted, claimed, _, *earlier = rows.results_in_one_query(statements)
    if not claimed:
        return None
    rows.saved(turn, inserted[0][0])
    return _claimed(turn, claimed, earlier)


def _claimed(turn: Turn, claimed: list[tuple], earlier: list) -> Begun:
    batch = sorted(_light_messages(claimed), key=lambda m: (m.created_at, m.pk))
    return Begun(turn, batch, list(reversed(_light_messages(earlier[0]))) if earlier else [])


def claim_more(turn: Turn, history_window: int = 0) -> Begun | None:
    """claim_pending for a running turn taking in what arrived meanwhile (a supersede): Begun
    with only the newly claimed messages, and on PostgreSQL the turn's history before its whole
    batch, read in the same query (elsewhere Begun.history stays None). None: nothing pending.
    """
    if not rows.one_query_allowed():
        batch = claim_pending(turn)
        return Begun(turn, batch) if batch else None
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    conversation_id = turn.conversation_id
    statements = [
        (_LOCK_CONVERSATION_SQL, [conversation_id]),
        (
            _CLAIM_FOR_TURN_SQL,
            [PROCESSING.value, stamp, turn.pk, stamp, conversation_id, IN.value, PENDING.value],
        ),
    ]
    if history_window > 0:
        statements.append(_history_light(conversation_id, turn.pk, history_window))
    _locked, claimed, *earlier = rows.results_in_one_query(statements)
    return _claimed(turn, claimed, earlier) if claimed else None


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
