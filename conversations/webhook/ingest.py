"""Store inbound WhatsApp messages exactly once; delivery statuses go to conversations.webhook.statuses.

The database is the queue of record: a message is committed (state pending) before any worker is
woken, and the unique wamid makes every redelivery a no-op.
"""

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations import events, metrics, rows
from conversations.engine import claims
from conversations.masking import mask_phone
from conversations.models import Conversation, Customer, Message
from conversations.privacy.fields import wamid_hash
from conversations.webhook.statuses import apply_status
from conversations.whatsapp.payloads import InboundMessage, Notification

logger = logging.getLogger(__name__)


def store_inbound(item: InboundMessage, *, wake: bool = True) -> Message | None:
    """Store one inbound message as pending; None when its wamid is already stored (a duplicate).

    With `wake`, the worker is woken for its conversation once the transaction commits, unless
    an earlier pending message of the conversation brings one (see Stored).
    `ingest_notification` passes False and wakes each conversation once per POST.
    """
    stored = _store_once(item)
    if stored is None:
        return None
    _received(stored.message)
    if wake and stored.needs_wake:
        events.wake_on_commit(stored.message.conversation_id)
    return stored.message


def _received(message: Message, told: list | None = None) -> None:
    """Count the stored message and tell the staff desk (see events.tell_staff for `told`)."""
    metrics.inc(metrics.MESSAGES_RECEIVED, type=message.type)
    arrived = {"message_id": message.pk, "direction": "in"}
    events.tell_staff(events.staff_event("message", message.conversation_id, **arrived), told)


@dataclass(frozen=True)
class Stored:
    message: Message
    # No earlier message of the conversation was pending when this one was stored: it is the
    # one whose wake brings a worker. A later one needs none: every claim takes all pending
    # messages and waits for the conversation row this delivery locked (claims.py), so the claim
    # that takes the earlier message takes this one too. Unless the earlier one is older than
    # claims.PENDING_GRACE_S: its wake may have been lost, and this one then brings a worker
    # at once rather than the sweeper later.
    needs_wake: bool


def _store_once(item: InboundMessage) -> Stored | None:
    try:
        # Its own transaction (one query's implicit one, or a savepoint inside a caller's): a
        # duplicate rolls back everything this delivery touched, the customer's last_seen_at
        # and reply number included.
        if rows.one_query_allowed() and connection.get_autocommit():
            stored = _store_in_one_query(item)
            if stored is not None:
                return stored
        with transaction.atomic():
            return _store(item)
    except IntegrityError:
        # The unique wamid: another delivery of this message got there first (maybe racing us),
        # or it was stored and erased since (only its hash is left).
        if Message.objects.filter(provider_id=item.wamid).exists():
            logger.info("duplicate delivery of an inbound message ignored")
            return None
        if Message.objects.filter(wamid_hash=wamid_hash(item.wamid)).exists():
            logger.info("redelivery of an erased message ignored")
            return None
        raise


# Every message of every customer goes through these statements, so they are plain SQL (the
# message's INSERT through conversations.rows, built from the model's fields): the ORM spent
# ~1.4 ms of CPU per message building them (BENCHMARKS.md, ingest), more than the rest of the
# webhook. Portable: PostgreSQL, and SQLite from 3.35 (RETURNING); the tests of this module run
# every one of them on both.
_UPSERT_CUSTOMER_SQL = (
    "INSERT INTO conversations_customer"
    " (wa_id, reply_wa_id, profile_name, document, first_seen_at, last_seen_at)"
    " VALUES (%s, %s, %s, '', %s, %s)"
    " ON CONFLICT (wa_id) DO UPDATE SET reply_wa_id = excluded.reply_wa_id,"
    " last_seen_at = excluded.last_seen_at,"
    " profile_name = CASE WHEN excluded.profile_name <> '' THEN excluded.profile_name"
    " ELSE conversations_customer.profile_name END"
    " RETURNING id"
)
# Redeliveries can come late: the 24 h reply window starts at the newest message.
_TOUCH = (
    "UPDATE conversations_conversation SET last_inbound_at = CASE"
    " WHEN last_inbound_at IS NULL OR last_inbound_at < %s THEN %s ELSE last_inbound_at END,"
    " updated_at = %s"
)
_TOUCH_OPEN_CONVERSATION_SQL = _TOUCH + " WHERE customer_id = %s AND status = %s RETURNING id"
_TOUCH_CONVERSATION_SQL = _TOUCH + " WHERE id = %s"
assert Customer._meta.db_table == "conversations_customer"
assert Conversation._meta.db_table == "conversations_conversation"


def _times(item: InboundMessage):
    """When WhatsApp says it was sent (else now), and now and that time as database values."""
    now = timezone.now()
    sent_at = item.sent_at or now
    ops = connection.ops
    return sent_at, ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(sent_at)


def _store(item: InboundMessage) -> Stored:
    sent_at, now_db, sent_db = _times(item)
    with connection.cursor() as cursor:
        # The upsert also locks the customer's row: deliveries for one customer go through the
        # rest of the transaction one at a time.
        cursor.execute(
            _UPSERT_CUSTOMER_SQL, [item.wa_id, item.reply_wa_id, item.profile_name, now_db, now_db]
        )
        customer_id = cursor.fetchone()[0]
        # Touching the open conversation locks its row before the pending check below: a claim
        # (which locks it too) runs either before that check or after our commit, never between.
        touch = [sent_db, sent_db, now_db]
        cursor.execute(
            _TOUCH_OPEN_CONVERSATION_SQL, [*touch, customer_id, Conversation.Status.OPEN.value]
        )
        row = cursor.fetchone()
        if row:
            conversation_id = row[0]
        else:
            conversation_id = _open_conversation(customer_id)
            cursor.execute(_TOUCH_CONVERSATION_SQL, [*touch, conversation_id])
        earlier_pending = claims.has_recent_pending(conversation_id)
        message = _new_message(item, conversation_id=conversation_id, sent_at=sent_at)
        message.save(force_insert=True)
    return Stored(message, needs_wake=not earlier_pending)


# The same statements sent as one query: PostgreSQL runs them as one implicit transaction, in
# one round trip instead of six (BEGIN, four statements, COMMIT) or more for a new conversation.
# The order and the locks are _store's: each statement sees what the ones before it committed
# to the transaction, and the last one's snapshot is taken after the touch has locked the
# conversation row, so its pending check sees every claim that came first, as _store's does.
#
# A subquery, not a join: the plan is then the customer's row, then its open conversation by
# index, whatever the planner's statistics say (a join planned on stale ones scanned every pair).
_CUSTOMER_ID_SQL = "(SELECT id FROM conversations_customer WHERE wa_id = %s)"
# Constants only; every value is a parameter.
_TOUCH_OPEN_CONVERSATION_OF_SQL = (
    _TOUCH + " WHERE customer_id = " + _CUSTOMER_ID_SQL + " AND status = %s"
)
_OPEN_CONVERSATION_OF_SQL = (
    "conversations_conversation c WHERE c.customer_id = " + _CUSTOMER_ID_SQL + " AND c.status = %s"
)
# A customer with no open conversation gets one (their first message, or their first after staff
# closed the last one). The upsert before it holds the customer's row, so only a delivery
# outside ingest could open one meanwhile: one_open_conversation_per_customer keeps it single.
_CUSTOMER_WITHOUT_OPEN_CONVERSATION_SQL = (
    "conversations_customer cu WHERE cu.wa_id = %s AND NOT EXISTS (SELECT 1 FROM"
    " conversations_conversation c WHERE c.customer_id = cu.id AND c.status = %s)"
)
_ONE_OPEN_CONVERSATION = "ON CONFLICT (customer_id) WHERE status = 'open' DO NOTHING"
# A statement's data-modifying WITH is invisible to its own SELECT: EXISTS sees only the
# messages stored before this one (claims.has_recent_pending's question).
_EARLIER_PENDING_OF_STORED_SQL = (
    " SELECT stored.id, stored.conversation_id, EXISTS (SELECT 1 FROM conversations_message m"
    " WHERE m.conversation_id = stored.conversation_id AND m.direction = %s AND m.state = %s"
    " AND m.created_at >= %s) FROM stored"
)


def _store_in_one_query(item: InboundMessage) -> Stored | None:
    """_store in one query (PostgreSQL, outside a transaction). None, with nothing stored but
    the customer's last_seen_at, in the one case where the touch finds no open conversation:
    staff closed it right before (_store then opens another)."""
    sent_at, now_db, sent_db = _times(item)
    open_status = Conversation.Status.OPEN.value
    open_conversation = rows.insert_select_statement(
        Conversation(customer_id=None),
        (_CUSTOMER_WITHOUT_OPEN_CONVERSATION_SQL, [item.wa_id, open_status]),
        {"customer_id": "cu.id"},
        on_conflict=_ONE_OPEN_CONVERSATION,
    )
    message = _new_message(item, conversation_id=None, sent_at=sent_at)
    insert_sql, insert_params = rows.insert_select_statement(
        message,
        (_OPEN_CONVERSATION_OF_SQL, [item.wa_id, open_status]),
        {"conversation_id": "c.id"},
    )
    *_, stored = rows.results_in_one_query(
        [
            (
                _UPSERT_CUSTOMER_SQL,
                [item.wa_id, item.reply_wa_id, item.profile_name, now_db, now_db],
            ),
            open_conversation,
            (
                _TOUCH_OPEN_CONVERSATION_OF_SQL,
                [sent_db, sent_db, now_db, item.wa_id, open_status],
            ),
            (
                f"WITH stored AS ({insert_sql})" + _EARLIER_PENDING_OF_STORED_SQL,
                [
                    *insert_params,
                    Message.Direction.INBOUND.value,
                    Message.State.PENDING.value,
                    claims.recent_since(),
                ],
            ),
        ]
    )
    if not stored:
        return None
    message_id, conversation_id, earlier_pending = stored[0]
    message.conversation_id = conversation_id
    return Stored(rows.saved(message, message_id), needs_wake=not earlier_pending)


def _new_message(item: InboundMessage, *, conversation_id: int | None, sent_at) -> Message:
    return Message(
        conversation_id=conversation_id,
        direction=Message.Direction.INBOUND,
        provider_id=item.wamid,
        wamid_hash=wamid_hash(item.wamid),
        type=item.type,
        text=item.text,
        raw=item.raw,
        state=Message.State.PENDING,
        sent_at=sent_at,
        media_id=item.media_id,
        media_mime_type=item.media_mime_type,
        media_sha256=item.media_sha256,
        # Fetched by the worker or when staff open it, never here: ingest does no other I/O.
        media_status=item.media_status,
    )


def _open_conversation(customer_id: int) -> int:
    """Open a conversation for a customer with none open (their first message, or their
    first after staff closed the last one)."""
    try:
        with transaction.atomic():
            return Conversation.objects.create(customer_id=customer_id).pk
    except IntegrityError:
        # one_open_conversation_per_customer: someone else opened it first.
        return Conversation.objects.values_list("pk", flat=True).get(
            customer_id=customer_id, status=Conversation.Status.OPEN
        )


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    statuses_applied: int = 0
    statuses_ignored: int = 0
    # The conversations to wake: those where a new message found nothing else pending.
    conversation_ids: list[int] = field(default_factory=list)
    staff_events: list = field(default_factory=list)  # for the caller to send when wake=False


def ingest_notification(notification: Notification, *, wake: bool = True) -> IngestResult:
    """Store every message (one transaction each), apply every status, then wake once (on
    commit) each conversation that needs it (see store_inbound), and tell the staff desk. With
    `wake=False` the caller wakes `result.conversation_ids` and sends `result.staff_events`
    itself (the ASGI webhook, from its event loop, once Meta has its answer)."""
    result = IngestResult()
    for item in notification.messages:
        stored = _store_once(item)
        if stored is None:
            result.duplicates += 1
            continue
        result.stored += 1
        _received(stored.message, None if wake else result.staff_events)
        conversation_id = stored.message.conversation_id
        if stored.needs_wake and conversation_id not in result.conversation_ids:
            result.conversation_ids.append(conversation_id)
        logger.debug("stored inbound %s from %s", stored.message.type, mask_phone(item.wa_id))
    for status in notification.statuses:
        if apply_status(status, None if wake else result.staff_events):
            result.statuses_applied += 1
        else:
            result.statuses_ignored += 1
    if wake:
        for conversation_id in result.conversation_ids:
            events.wake_on_commit(conversation_id)
    return result
