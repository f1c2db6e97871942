"""The engine checks WhatsApp's 24-hour window before it generates a reply
(conversations.engine.turn_run): outside it nothing is generated or sent, and a person takes the
conversation. Through the turn loop, as test_turn_run.py does."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import events
from conversations.engine import turn_loop, turn_run
from conversations.models import Conversation, Message, Turn
from conversations.threads import in_thread
from conversations.whatsapp.sender import SendError
from conversations.whatsapp.window import OUTSIDE_WINDOW_REASON
from tests.fakes.engine import (
    assistant,  # noqa: F401 (fixture)
    astore,
    conversation,
    crm,  # noqa: F401 (fixture)
    inbound,
    q,
    replies,
    scaled,  # noqa: F401 (fixture)
    short_lived_connections,  # noqa: F401 (fixture)
    turns,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _sent_ago(message: Message, age: timedelta) -> None:
    Message.objects.filter(pk=message.pk).update(sent_at=timezone.now() - age)


@pytest.fixture
def staff_events(monkeypatch):
    sent = []
    monkeypatch.setattr(events, "send_to_staff", sent.append)
    return sent


async def test_it_generates_nothing_and_hands_over_after_24_hours(
    scaled, assistant, crm, staff_events
):
    c = await conversation()
    message = await astore(c.pk, "minha internet caiu")
    await in_thread(_sent_ago)(message, timedelta(hours=24, minutes=1))
    await turn_loop.run_turns(c.pk)
    assert assistant.calls == []
    assert await q(replies, c.pk) == []
    (stored,) = await q(inbound, c.pk)
    assert stored.state == Message.State.SKIPPED
    assert stored.failure_reason == OUTSIDE_WINDOW_REASON
    (turn,) = await q(turns, c.pk)
    assert turn.outcome == Turn.Outcome.HUMAN
    assert turn.detail == OUTSIDE_WINDOW_REASON
    await in_thread(c.refresh_from_db)()
    assert c.handler == Conversation.Handler.HUMAN
    assert c.handoff_reason == "fora da janela de 24 h"
    assert c.handoff_source == Conversation.HandoffSource.WINDOW
    assert c.handoff_at is not None
    assert [e["event"] for e in staff_events] == ["handoff"]


async def test_it_answers_a_batch_whose_newest_message_is_inside_the_window(scaled, assistant, crm):
    c = await conversation()
    old = await astore(c.pk, "oi")
    await in_thread(_sent_ago)(old, timedelta(hours=30))
    new = await astore(c.pk, "ainda estou sem internet")
    await in_thread(_sent_ago)(new, timedelta(hours=23, minutes=59))
    await turn_loop.run_turns(c.pk)
    assert len(assistant.calls) == 1
    assert len(await q(replies, c.pk)) == 1
    await in_thread(c.refresh_from_db)()
    assert c.handler == Conversation.Handler.BOT


async def test_it_records_the_window_reason_when_the_cloud_api_refuses_with_131047(
    scaled, assistant, crm, monkeypatch, staff_events
):
    def refused(conversation, message):
        # What the sender does on 131047: the message failed, the conversation handed over.
        from conversations.whatsapp.window import hand_over_outside_window

        hand_over_outside_window(conversation.pk)
        raise SendError("Cloud API answered {'status': 400, 'code': 131047}", outside_window=True)

    monkeypatch.setattr(turn_run, "hand_over", refused)
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    (turn,) = await q(turns, c.pk)
    assert turn.outcome == Turn.Outcome.HUMAN
    assert turn.detail == OUTSIDE_WINDOW_REASON
    await in_thread(c.refresh_from_db)()
    assert c.handler == Conversation.Handler.HUMAN
    assert c.handoff_reason == OUTSIDE_WINDOW_REASON
    assert c.handoff_source == Conversation.HandoffSource.WINDOW
    # The sender's handoff told the staff; the turn's record of it does not tell them again.
    assert [e["event"] for e in staff_events if e["event"] == "handoff"] == ["handoff"]
