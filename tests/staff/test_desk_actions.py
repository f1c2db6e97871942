"""conversations.staff.desk_actions: the bot stops at once on take over, even mid-turn; the
customer hears the optional take over / resolve messages; the desk hears every change."""

import pytest

from conversations.engine import turn_loop
from conversations.models import Conversation, Message, Turn
from conversations.staff import desk_actions
from conversations.threads import in_thread
from tests.fakes.desk import console_sender, member, waiting  # noqa: F401 (fixture)
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
)


@pytest.fixture
def staff_events(monkeypatch):
    sent = []
    monkeypatch.setattr(desk_actions, "notify_staff_on_commit", lambda *a, **k: sent.append((a, k)))
    return sent


@pytest.mark.django_db(transaction=True)
async def test_a_take_over_in_the_middle_of_a_turn_stops_the_reply(scaled, assistant, crm):
    c = await conversation()
    await astore(c.pk, "oi")
    agent = await in_thread(member)("ana", "Atendimento")

    async def staff_take_over(request):  # while the assistant writes its reply
        fresh = await in_thread(Conversation.objects.get)(pk=c.pk)
        await in_thread(desk_actions.take_over)(fresh, agent)

    assistant.on_call = staff_take_over
    await turn_loop.run_turns(c.pk)
    assert await q(replies, c.pk) == []
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.SKIPPED]
    assert (await q(turns, c.pk))[0].outcome == Turn.Outcome.HUMAN
    fresh = await in_thread(Conversation.objects.get)(pk=c.pk)
    assert (fresh.handler, fresh.assigned_to_id) == (Conversation.Handler.HUMAN, agent.pk)


@pytest.mark.django_db(transaction=True)
async def test_a_fallback_handoff_records_its_source_and_time(scaled, assistant, crm):
    assistant.fail = True
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    fresh = await in_thread(Conversation.objects.get)(pk=c.pk)
    assert fresh.handoff_source == Conversation.HandoffSource.FALLBACK
    assert fresh.handoff_at is not None


@pytest.mark.django_db(transaction=True)
def test_take_over_and_resolve_tell_the_customer_when_the_texts_are_set(console_sender):
    configure(take_over_message="Oi! Aqui é a equipe.", resolve_message="Até logo!")
    conversation = waiting("5511911110001", 3)
    agent = member("ana", "Atendimento")
    desk_actions.take_over(conversation, agent)
    desk_actions.resolve(conversation, agent)
    texts = list(
        Message.objects.filter(direction=Message.Direction.OUTBOUND).values_list("text", flat=True)
    )
    assert texts == ["Oi! Aqui é a equipe.", "Até logo!"]


@pytest.mark.django_db(transaction=True)
def test_empty_texts_send_nothing_on_take_over_and_resolve(console_sender):
    configure(take_over_message="", resolve_message="  ")
    conversation = waiting("5511911110001", 3)
    agent = member("ana", "Atendimento")
    desk_actions.take_over(conversation, agent)
    desk_actions.resolve(conversation, agent)
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


@pytest.mark.django_db
def test_each_action_tells_the_desk(staff_events, console_sender):
    conversation = waiting("5511911110001", 3)
    agent, colleague = member("ana", "Atendimento"), member("bia", "Atendimento")
    desk_actions.assign(conversation, agent, agent)
    desk_actions.assign(conversation, agent, colleague)
    message = desk_actions.reply(conversation, agent, "Olá")
    note = desk_actions.add_note(conversation, agent, "nota")
    desk_actions.hand_back(conversation, agent)
    conversation.refresh_from_db()
    desk_actions.take_over(conversation, agent)
    desk_actions.resolve(conversation, agent)
    assert [(a[0], k) for a, k in staff_events] == [
        ("assigned", {"handler": "human", "assigned_to": agent.pk}),
        ("assigned", {"handler": "human", "assigned_to": colleague.pk}),
        ("message", {"message_id": message.pk, "kind": "staff"}),
        ("message", {"note_id": note.pk, "kind": "note"}),
        ("handback", {"handler": "bot"}),
        ("assigned", {"handler": "human", "assigned_to": agent.pk}),
        ("resolved", {"closed_by": agent.pk}),
    ]


@pytest.mark.django_db
def test_the_first_reply_keeps_its_time_and_assigns_an_unassigned_conversation(console_sender):
    conversation = waiting("5511911110001", 3)
    agent, colleague = member("ana", "Atendimento"), member("bia", "Atendimento")
    desk_actions.reply(conversation, agent, "primeira")
    conversation.refresh_from_db()
    first = conversation.first_staff_reply_at
    assert conversation.assigned_to == agent
    desk_actions.reply(conversation, colleague, "segunda")
    conversation.refresh_from_db()
    assert conversation.first_staff_reply_at == first
    assert conversation.assigned_to == agent
