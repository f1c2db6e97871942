"""The end of a turn: what changed while its reply was prepared, and the one commit that records
the outcome (the sent reply, a handoff to a person, the batch's state, the turn record).

Plain synchronous units of work, like conversations.engine.claims, whose queue states they settle.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from conversations import metrics, rows
from conversations.engine.claims import IN, PENDING, PROCESSING
from conversations.engine.peeks import Peek, peek
from conversations.models import Conversation, Message, Turn, handoff_fields

# In plain SQL for the reason given in conversations.engine.claims (the ORM costs more than the query).
_AFTER_REPLY_SQL = (
    "SELECT c.handler,"
    " (SELECT COUNT(*) FROM conversations_message m"
    "  WHERE m.conversation_id = c.id AND m.direction = %s AND m.state = %s),"
    " (SELECT COUNT(*) FROM conversations_message m"
    "  WHERE m.conversation_id = c.id AND m.turn_id = %s AND m.state = %s)"
    " FROM conversations_conversation c WHERE c.id = %s"
)
# Conditional: only the messages still claimed by this turn are settled.
_FINISH_BATCH_SQL = (
    "UPDATE conversations_message SET state = %s, failure_reason = %s, updated_at = %s"
    " WHERE turn_id = %s AND state = %s"
)
assert Message._meta.db_table == "conversations_message"
assert Conversation._meta.db_table == "conversations_conversation"


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


def _with_end(fields: dict, started: float | None) -> dict:
    if started is not None:
        fields["total_ms"] = max(0, round((time.monotonic() - started) * 1000))
    fields["finished_at"] = timezone.now()
    return fields


def finish_turn(turn: Turn, *, started: float | None = None, **fields) -> None:
    """Record the turn's outcome and timings; `started` (monotonic) gives total_ms."""
    Turn.objects.filter(pk=turn.pk).update(**_with_end(fields, started))
    count_ended(turn, fields)


def count_ended(turn: Turn, fields: dict) -> None:
    """The metrics of a recorded turn. Tokens come from the record's fields, or from the turn
    object when the caller filled them there."""
    outcome = fields.get("outcome", turn.outcome)
    # A crashed turn keeps its record "running" (its batch stays claimed for the sweeper).
    metrics.inc(metrics.TURNS, outcome="crashed" if outcome == Turn.Outcome.RUNNING else outcome)
    if "total_ms" in fields:
        metrics.observe(metrics.TURN_DURATION, fields["total_ms"] / 1000)
    if fields.get("first_reply_ms") is not None:
        metrics.observe(metrics.FIRST_REPLY, fields["first_reply_ms"] / 1000)
    for kind in ("input", "cached_input", "output"):
        used = fields.get(f"{kind}_tokens", getattr(turn, f"{kind}_tokens", 0))
        metrics.inc(metrics.LLM_TOKENS, used or 0, kind=kind)


# finish_turn's UPDATE for settle(), which also asks has_pending's question.
_RECORD_TURN_SQL = (
    "UPDATE conversations_turn SET {assignments} WHERE id = %s"
    " RETURNING EXISTS (SELECT 1 FROM conversations_message"
    " WHERE conversation_id = %s AND direction = %s AND state = %s)"
)
assert Turn._meta.db_table == "conversations_turn"


def _record_turn(turn: Turn, fields: dict) -> rows.Statement:
    """Write the turn's fields; its one row says whether the conversation has pending messages."""
    model_fields = [Turn._meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in model_fields)
    values = [f.get_db_prep_value(fields[f.name], connection) for f in model_fields]
    return (
        _RECORD_TURN_SQL.format(assignments=assignments),
        [*values, turn.pk, turn.conversation_id, IN.value, PENDING.value],
    )


def settle(
    turn: Turn,
    *,
    batch_state: str = "",
    reason: str = "",
    handoff: str = "",
    handoff_source: str = "",
    started: float | None = None,
    first: Sequence[rows.Statement] = (),
    **fields,
) -> Peek | None:
    """End a turn in one commit: `first` (the engine's sent-reply record), a handoff to a
    person (`handoff` is its reason; `handoff_source` who asked, the fallback by default), the
    batch's state, the turn record. On PostgreSQL that is one round trip.

    Returns a fresh peek at the conversation, the loop's next look for pending messages, or None
    when nothing is pending (the usual case: the turn record's UPDATE answers that, sparing the
    full peek's query).
    """
    statements = list(first)
    if handoff:
        source = handoff_source or Conversation.HandoffSource.FALLBACK
        statements.append(
            rows.update_statement(
                Conversation, turn.conversation_id, **handoff_fields(handoff, source)
            )
        )
    if batch_state:
        stamp = connection.ops.adapt_datetimefield_value(timezone.now())
        statements.append(
            (_FINISH_BATCH_SQL, [str(batch_state), reason[:255], stamp, turn.pk, PROCESSING.value])
        )
    statements.append(_record_turn(turn, _with_end(fields, started)))
    row = rows.in_one_round_trip(statements)
    count_ended(turn, fields)
    return peek(turn.conversation_id) if row and row[0] else None
