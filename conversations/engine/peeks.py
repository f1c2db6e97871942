"""A look at a conversation before and between turns: its customer, its handler, and the arrival
span of its pending messages, in one query (what the debounce and the turn loop decide on)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations.engine.claims import BOT, IN, PENDING, lock_conversation
from conversations.models import Conversation, Customer, Message


def _pending(conversation_id: int):
    return Message.objects.filter(conversation_id=conversation_id, direction=IN, state=PENDING)


@dataclass
class Peek:
    conversation: Conversation | None  # None: it does not exist
    oldest: datetime | None = None  # arrival of the oldest / newest pending message
    newest: datetime | None = None

    @property
    def handler(self) -> str | None:
        return self.conversation.handler if self.conversation else None


# peek()'s query in plain SQL: through the ORM (select_related and two filtered aggregates) it
# cost ~0.8 ms of CPU to build, several times the query. Only what a turn reads is loaded:
# the rest of the conversation and customer rows stays deferred (Django loads a deferred field
# when it is first read, as after .only()).
_PEEK_SQL = (
    "SELECT c.handler, c.customer_id, cu.wa_id, cu.reply_wa_id,"
    " (SELECT MIN(m.created_at) FROM conversations_message m"
    "  WHERE m.conversation_id = c.id AND m.direction = %s AND m.state = %s),"
    " (SELECT MAX(m.created_at) FROM conversations_message m"
    "  WHERE m.conversation_id = c.id AND m.direction = %s AND m.state = %s)"
    " FROM conversations_conversation c"
    " JOIN conversations_customer cu ON cu.id = c.customer_id WHERE c.id = %s"
)
assert Customer._meta.db_table == "conversations_customer"


def _arrival(value) -> datetime | None:
    """A MIN/MAX of created_at as the database returns it (SQLite: text in UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def peek(conversation_id: int) -> Peek:
    """The conversation (with its customer) and the arrival span of its pending messages, in
    one query.

    While a person handles it the pending messages are marked skipped here: stored and shown,
    never answered by the bot.
    """
    params = [IN.value, PENDING.value, IN.value, PENDING.value, conversation_id]
    with connection.cursor() as cursor:
        cursor.execute(_PEEK_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return Peek(None)
    handler, customer_id, wa_id, reply_wa_id, oldest, newest = row
    db = connection.alias
    conversation = Conversation.from_db(
        db, ["id", "customer_id", "handler"], [conversation_id, customer_id, handler]
    )
    conversation.customer = Customer.from_db(
        db, ["id", "wa_id", "reply_wa_id"], [customer_id, wa_id, reply_wa_id]
    )
    if oldest is None:
        return Peek(conversation)
    if handler != BOT:
        with transaction.atomic():
            lock_conversation(conversation_id)
            _pending(conversation_id).update(state=Message.State.SKIPPED, updated_at=timezone.now())
        return Peek(conversation)
    return Peek(conversation, _arrival(oldest), _arrival(newest))
