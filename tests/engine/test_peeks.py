"""conversations.engine.peeks: a look at a conversation, its pending span and what a turn needs."""

import pytest

from conversations.engine import peeks
from conversations.models import Conversation, Message
from tests.fakes.engine import new_conversation, store

pytestmark = pytest.mark.django_db(transaction=True)


def test_peek_gives_the_pending_span_and_what_a_turn_needs():
    conversation = new_conversation()
    first, second = store(conversation.pk, "a"), store(conversation.pk, "b")
    peek = peeks.peek(conversation.pk)
    assert (peek.oldest, peek.newest) == (first.created_at, second.created_at)
    assert peek.handler == Conversation.Handler.BOT
    assert peek.conversation.customer.wa_id == conversation.customer.wa_id
    assert peek.conversation.status == Conversation.Status.OPEN  # a deferred field, loaded on read


def test_peek_of_a_conversation_with_nothing_pending_has_no_span():
    peek = peeks.peek(new_conversation().pk)
    assert (peek.oldest, peek.newest) == (None, None)


def test_peek_of_a_missing_conversation_finds_none():
    assert peeks.peek(10**9).conversation is None


def test_peek_marks_pending_messages_skipped_while_a_person_handles_it():
    conversation = new_conversation(handler=Conversation.Handler.HUMAN)
    message = store(conversation.pk, "a")
    assert peeks.peek(conversation.pk).oldest is None
    message.refresh_from_db()
    assert message.state == Message.State.SKIPPED
