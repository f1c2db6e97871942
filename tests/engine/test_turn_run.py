"""The work of one turn once its batch is claimed (conversations.engine.turn_run), run through the turn
loop as a worker runs it: a person taking over mid-turn, the fallback when the LLM fails, a reply
that cannot be sent, a context that breaks its contract, the typing indicator, outage notices.
Scaled time, the real database, lock and console sender, as in test_engine.py.
"""

import pytest

from conversations.engine import turn_loop, turn_run, typing_indicator
from conversations.models import Conversation, Message, Turn
from conversations.runtime import get_runtime
from conversations.threads import in_thread
from tests.fakes.engine import (
    assistant,  # noqa: F401 (fixture)
    astore,
    configure,
    conversation,
    crm,  # noqa: F401 (fixture)
    inbound,
    q,
    replies,
    scaled,  # noqa: F401 (fixture)
    short_lived_connections,  # noqa: F401 (fixture)
    turns,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_does_not_reply_when_a_person_takes_over_during_the_turn(scaled, assistant, crm):
    c = await conversation()
    await astore(c.pk, "oi")

    async def take_over(request):
        await in_thread(
            lambda: Conversation.objects.filter(pk=c.pk).update(handler=Conversation.Handler.HUMAN)
        )()

    assistant.on_call = take_over
    await turn_loop.run_turns(c.pk)
    assert await q(replies, c.pk) == []
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.SKIPPED]
    assert (await q(turns, c.pk))[0].outcome == Turn.Outcome.HUMAN


async def test_it_sends_the_fallback_once_and_hands_over_when_the_llm_fails(scaled, assistant, crm):
    assistant.fail = True
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    await astore(c.pk, "alô?")
    await turn_loop.run_turns(c.pk)
    assert await q(replies, c.pk) == []
    (fallback,) = await q(replies, c.pk, kind=Message.Kind.FALLBACK)
    assert fallback.text == get_runtime().fallback_reply
    await in_thread(c.refresh_from_db)()
    assert c.handler == Conversation.Handler.HUMAN
    assert "the fake model is down" in c.handoff_reason
    first, second = await q(inbound, c.pk)
    assert first.state == Message.State.FAILED
    assert "the fake model is down" in first.failure_reason
    assert second.state == Message.State.SKIPPED  # a person handles it now
    (turn,) = await q(turns, c.pk)
    assert turn.outcome == Turn.Outcome.FALLBACK
    assert len(assistant.calls) == 1


async def test_it_hands_over_when_the_reply_cannot_be_sent(scaled, assistant, crm, monkeypatch):
    from conversations.whatsapp.sender import SendError

    def broken_send(conversation, message):
        raise SendError("Cloud API answered 400")

    monkeypatch.setattr(turn_run, "hand_over", broken_send)
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    (message,) = await q(inbound, c.pk)
    assert message.state == Message.State.FAILED
    assert (await q(turns, c.pk))[0].outcome == Turn.Outcome.HUMAN
    await in_thread(c.refresh_from_db)()
    assert c.handler == Conversation.Handler.HUMAN


async def test_it_replies_when_the_context_raises_against_its_contract(
    scaled, assistant, crm, monkeypatch
):
    def broken_context(conversation_id, texts):
        raise RuntimeError("bug")

    monkeypatch.setattr(turn_run, "build_customer_context", broken_context)
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    assert assistant.calls[0].context.crm_ok is False
    assert len(await q(replies, c.pk)) == 1


async def test_it_shows_the_typing_indicator_on_the_newest_message_and_refreshes_it(
    scaled, assistant, crm, monkeypatch
):
    shown = []

    def typing(message):
        shown.append(message.pk)
        return True

    monkeypatch.setattr(typing_indicator, "send_typing_indicator", typing)
    monkeypatch.setattr(typing_indicator, "TYPING_REFRESH_S", 0.05)
    assistant.delay_s = 0.3
    c = await conversation()
    await astore(c.pk, "um")
    newest = await astore(c.pk, "dois")
    await turn_loop.run_turns(c.pk)
    assert len(shown) >= 3
    assert set(shown) == {newest.pk}


async def test_it_answers_when_the_typing_indicator_fails(scaled, assistant, crm, monkeypatch):
    def broken(message):
        raise RuntimeError("Cloud API down")

    monkeypatch.setattr(typing_indicator, "send_typing_indicator", broken)
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    assert len(await q(replies, c.pk)) == 1


async def test_it_sends_due_outage_notices_before_the_reply(scaled, assistant, crm, monkeypatch):
    crm.notices = [(7, "Aviso: falha na sua região.")]
    claimed = []

    def claim_once(outage_id, conversation_id):
        first = (outage_id, conversation_id) not in claimed
        claimed.append((outage_id, conversation_id))
        return first

    monkeypatch.setattr(turn_run, "claim_notice", claim_once)
    c = await conversation()
    await astore(c.pk, "sem internet")
    await turn_loop.run_turns(c.pk)
    await astore(c.pk, "ainda sem")
    await turn_loop.run_turns(c.pk)
    (notice,) = await q(replies, c.pk, kind=Message.Kind.NOTICE)
    assert notice.text == "Aviso: falha na sua região."
    sent = await in_thread(
        lambda: list(
            Message.objects.filter(conversation_id=c.pk, direction="out")
            .order_by("created_at", "id")
            .values_list("kind", flat=True)
        )
    )()
    assert sent == ["notice", "reply", "reply"]


async def test_it_records_the_fallback_as_who_asked_for_the_handoff(scaled, assistant, crm):
    assistant.fail = True
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    await in_thread(c.refresh_from_db)()
    assert c.handoff_source == Conversation.HandoffSource.FALLBACK
    assert c.handoff_at is not None


async def test_it_gives_the_assistant_tools_unless_staff_turned_them_off(scaled, assistant, crm):
    c = await conversation()
    first = await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    session = assistant.calls[0].tools
    assert (session.conversation_id, session.first_message_id) == (c.pk, first.pk)

    await in_thread(configure)(assistant_tools_enabled=False)
    await astore(c.pk, "oi de novo")
    await turn_loop.run_turns(c.pk)
    assert assistant.calls[1].tools is None


async def test_it_tells_the_staff_desk_when_the_assistant_starts_and_stops_typing(
    scaled, assistant, crm, monkeypatch
):
    told = []

    async def record(event, conversation_id, **data):
        told.append((event, conversation_id, data))

    monkeypatch.setattr(typing_indicator, "anotify_staff", record)
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    await wait_until(lambda: len(told) >= 2)  # each event is a task of its own
    assert told == [("typing", c.pk, {"state": "on"}), ("typing", c.pk, {"state": "off"})]
