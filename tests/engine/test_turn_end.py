"""conversations.engine.turn_end: what changed while a reply was prepared, and the commit that ends the
turn (run on SQLite here, on PostgreSQL with DATABASE_URL set, where settle is one query)."""

import time

import pytest

from conversations.engine import claims, turn_end
from conversations.models import Conversation, Message, Turn
from tests.engine.test_claims import conversation, inbound  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_after_reply_sees_new_messages_lost_claims_and_the_handler(conversation):
    inbound(conversation, "um")
    begun = claims.begin_turn(conversation.pk, lock_wait_ms=0, debounce_wait_ms=0)
    state = turn_end.after_reply(begun.turn, len(begun.batch))
    assert (state.new_pending, state.claims_intact, state.handler) == (False, True, "bot")

    inbound(conversation, "dois")
    Message.objects.filter(pk=begun.batch[0].pk).update(state=Message.State.PENDING)  # swept
    Conversation.objects.filter(pk=conversation.pk).update(handler=Conversation.Handler.HUMAN)
    state = turn_end.after_reply(begun.turn, len(begun.batch))
    assert (state.new_pending, state.claims_intact, state.handler) == (True, False, "human")


def test_settle_records_the_turn_and_tells_whether_more_is_pending(conversation):
    inbound(conversation, "um")
    begun = claims.begin_turn(conversation.pk, lock_wait_ms=0, debounce_wait_ms=0)
    later = inbound(conversation, "chegou depois")
    peek = turn_end.settle(
        begun.turn,
        batch_state=Message.State.ANSWERED,
        started=time.monotonic(),
        outcome=Turn.Outcome.ANSWERED,
        batch_size=1,
    )
    assert peek.oldest == later.created_at
    turn = Turn.objects.get(pk=begun.turn.pk)
    assert (turn.outcome, turn.batch_size) == (Turn.Outcome.ANSWERED, 1)
    assert turn.finished_at is not None
    assert Message.objects.get(pk=begun.batch[0].pk).state == Message.State.ANSWERED
    assert turn_end.settle(begun.turn, outcome=Turn.Outcome.ANSWERED) is not None
    later.state = Message.State.ANSWERED
    later.save()
    assert turn_end.settle(begun.turn, outcome=Turn.Outcome.ANSWERED) is None


def test_settle_hands_the_conversation_to_a_person_with_the_failed_batch(conversation):
    inbound(conversation, "um")
    begun = claims.begin_turn(conversation.pk, lock_wait_ms=0, debounce_wait_ms=0)
    turn_end.settle(
        begun.turn,
        batch_state=Message.State.FAILED,
        reason="reply not sent",
        handoff="reply not sent",
        outcome=Turn.Outcome.HUMAN,
    )
    conversation.refresh_from_db()
    assert conversation.handler == Conversation.Handler.HUMAN
    assert conversation.handoff_reason == "reply not sent"
    message = Message.objects.get(pk=begun.batch[0].pk)
    assert (message.state, message.failure_reason) == (Message.State.FAILED, "reply not sent")
