"""The turn loop (conversations.engine.turn_loop), in process, with time scaled down ~1:100.

The real lock (fakeredis here, the real Redis in the `live` variants), the real database, the real
console sender; a slow fake assistant and a slow fake CRM context stand in for the LLM and CRM.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from conversations.engine import turn_loop
from conversations.engine.locks import ConversationLock
from conversations.keys import lock_key
from conversations.models import Conversation, Message, Turn
from conversations.threads import in_thread
from tests.fakes.engine import (
    all_settled,
    assistant,  # noqa: F401 (fixture)
    astore,
    configure,
    conversation,
    crm,  # noqa: F401 (fixture)
    inbound,
    overlapping_turns,
    q,
    replies,
    request_texts,
    running_worker,
    scaled,  # noqa: F401 (fixture)
    short_lived_connections,  # noqa: F401 (fixture)
    store,
    turns,
    wait_until,
    wakes,  # noqa: F401 (fixture)
    webhook,
)

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_WORDS = ("processando", "erro", "error", "desculpe")


def assert_no_error_text(conversation_id: int) -> None:
    for message in replies(conversation_id):
        lowered = message.text.lower()
        assert not any(word in lowered for word in ERROR_WORDS), message.text


def assert_no_stale_reply(conversation_id: int) -> None:
    """No reply was sent while an earlier customer message sat outside its batch."""
    for reply in replies(conversation_id):
        for message in inbound(conversation_id):
            if message.created_at < reply.created_at:
                assert message.turn_id is not None and message.turn_id <= reply.turn_id, (
                    f"reply {reply.pk} (turn {reply.turn_id}) ignored message {message.pk}"
                )


# --- the seed's timeline --------------------------------------------------------------------


async def test_it_answers_the_seeds_timeline_without_error_or_stale_reply(scaled, assistant, crm):
    # 22:09:51 CPF, 22:10:03 "130" while the first turn (CRM 8-10 s + LLM 15-20 s) still runs;
    # scaled 1:100, with a third message to exercise a second supersede.
    c = await conversation()
    async with running_worker():
        await webhook(c.pk, "529.982.247-25")
        await asyncio.sleep(0.12)
        await webhook(c.pk, "130")
        await asyncio.sleep(0.12)
        await webhook(c.pk, "e a fatura?")
        await wait_until(lambda: all_settled([c.pk]))
        await asyncio.sleep(0.1)
    messages = await q(inbound, c.pk)
    assert [m.state for m in messages] == [Message.State.ANSWERED] * 3
    sent = await q(replies, c.pk)
    assert len(sent) == 1
    assert sent[0].text == "Resposta sobre: e a fatura?"
    assert request_texts(assistant.calls[-1]) == ["529.982.247-25", "130", "e a fatura?"]
    await q(assert_no_error_text, c.pk)
    await q(assert_no_stale_reply, c.pk)
    assert await q(overlapping_turns, [c.pk]) == []


async def test_it_answers_every_message_once_when_messages_come_every_12_scaled_seconds(
    scaled, assistant, crm
):
    # A turn takes ~25 s (scaled 0.25 s); six messages 12 s apart. With a supersede cap of 2
    # some turns must reply while the customer still types; later messages form the next turn.
    c = await conversation()
    async with running_worker():
        for n in range(6):
            await webhook(c.pk, f"mensagem {n}")
            await asyncio.sleep(0.12)
        await wait_until(lambda: all_settled([c.pk]))
        await asyncio.sleep(0.1)
    messages = await q(inbound, c.pk)
    assert all(m.state == Message.State.ANSWERED for m in messages)
    sent = await q(replies, c.pk)
    assert sent and sent[-1].text == "Resposta sobre: mensagem 5"
    answered_turns = {m.turn_id for m in messages}
    assert {r.turn_id for r in sent} == answered_turns  # one reply per turn, every turn replied
    assert len(sent) == len(answered_turns)
    await q(assert_no_error_text, c.pk)
    assert await q(overlapping_turns, [c.pk]) == []


# --- bursts and supersede -------------------------------------------------------------------


async def test_it_answers_a_burst_of_three_with_one_llm_call_and_one_reply(scaled, assistant, crm):
    # 3 messages within 30 ms (300 ms scaled); the quiet window is 200 ms here (2 s scaled) so
    # a slow store on a busy machine still falls inside it.
    await q(configure, debounce_quiet_ms=200, debounce_max_wait_ms=800)
    c = await conversation()
    async with running_worker():
        for text in ("oi", "minha internet caiu", "desde ontem"):
            await webhook(c.pk, text)
            await asyncio.sleep(0.01)
        await wait_until(lambda: all_settled([c.pk]))
    assert len(assistant.calls) == 1
    assert request_texts(assistant.calls[0]) == ["oi", "minha internet caiu", "desde ontem"]
    assert len(await q(replies, c.pk)) == 1
    assert len(crm.calls) == 1
    (turn,) = await q(turns, c.pk)
    assert turn.batch_size == 3
    assert turn.supersede_count == 0


async def test_it_regenerates_when_a_message_arrives_during_the_reply(scaled, assistant, crm):
    c = await conversation()
    first = await astore(c.pk, "qual meu plano?")
    arrived = []

    async def second_message(request):
        if not arrived:
            arrived.append(await astore(c.pk, "e quanto pago?"))

    assistant.on_call = second_message
    await turn_loop.run_turns(c.pk)
    assert [request_texts(call) for call in assistant.calls] == [
        ["qual meu plano?"],
        ["qual meu plano?", "e quanto pago?"],
    ]
    (reply,) = await q(replies, c.pk)
    assert reply.text == "Resposta sobre: e quanto pago?"
    (turn,) = await q(turns, c.pk)
    assert turn.supersede_count == 1
    assert turn.batch_size == 2
    assert turn.outcome == Turn.Outcome.ANSWERED
    assert {m.pk for m in await q(inbound, c.pk) if m.turn_id == turn.pk} == {
        first.pk,
        arrived[0].pk,
    }


async def test_it_stops_superseding_at_the_cap_and_answers_the_rest_in_the_next_turn(
    db, assistant, crm
):
    await q(configure, supersede_cap=1)
    c = await conversation()
    await astore(c.pk, "pergunta 0")
    count = iter(range(1, 10))

    async def keep_typing(request):
        n = next(count)
        if n <= 3:
            await astore(c.pk, f"pergunta {n}")

    assistant.on_call = keep_typing
    await turn_loop.run_turns(c.pk)
    first, second = await q(turns, c.pk)
    assert first.supersede_count == 1
    assert first.batch_size == 2
    assert second.batch_size == 2
    texts = [r.text for r in await q(replies, c.pk)]
    assert texts == ["Resposta sobre: pergunta 1", "Resposta sobre: pergunta 3"]
    assert all(m.state == Message.State.ANSWERED for m in await q(inbound, c.pk))


async def test_it_leaves_new_messages_for_the_next_turn_when_supersede_is_off(db, assistant, crm):
    await q(configure, supersede_enabled=False)
    c = await conversation()
    await astore(c.pk, "primeira")
    arrived = []

    async def second_message(request):
        if not arrived:
            arrived.append(await astore(c.pk, "segunda"))

    assistant.on_call = second_message
    await turn_loop.run_turns(c.pk)
    assert [request_texts(call)[-1] for call in assistant.calls] == ["primeira", "segunda"]
    assert [r.text for r in await q(replies, c.pk)] == [
        "Resposta sobre: primeira",
        "Resposta sobre: segunda",
    ]
    first, second = await q(turns, c.pk)
    assert (first.batch_size, first.supersede_count) == (1, 0)
    assert (second.batch_size, second.supersede_count) == (1, 0)
    # The second turn's transcript has the first exchange as history.
    assert [item["role"] for item in assistant.calls[1].transcript] == ["user", "assistant", "user"]


# --- the lock ------------------------------------------------------------------------------


async def test_it_returns_at_once_when_another_worker_holds_the_lock(scaled, assistant, crm):
    c = await conversation()
    await astore(c.pk, "oi")
    holder = ConversationLock(c.pk, ttl_s=5)
    assert await sync_to_async(holder.try_acquire)()
    try:
        await asyncio.wait_for(turn_loop.run_turns(c.pk), 0.5)
    finally:
        await sync_to_async(holder.release)()
    assert assistant.calls == []
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.PENDING]
    assert await q(replies, c.pk) == []


async def test_it_answers_a_message_stored_between_the_last_check_and_the_release(
    scaled, assistant, crm, wakes, monkeypatch
):
    # The stranded-message race, made deterministic: the message lands after the holder found
    # nothing pending and before it released the lock; its own wake found the lock busy.
    c = await conversation()
    await astore(c.pk, "primeira")
    injected = []

    async def message_lands(conversation_id):
        if not injected:
            injected.append(await astore(conversation_id, "chegou na hora H"))
            # Its wake reached a worker that found the lock busy and returned:
            assert not await sync_to_async(ConversationLock(conversation_id, ttl_s=5).try_acquire)()

    monkeypatch.setattr(turn_loop, "before_release", message_lands)
    await turn_loop.run_turns(c.pk)
    assert wakes == [c.pk]  # the holder re-woke the conversation after releasing
    assert [m.state for m in await q(inbound, c.pk)] == [
        Message.State.ANSWERED,
        Message.State.PENDING,
    ]
    await turn_loop.run_turns(c.pk)  # what the re-wake does
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.ANSWERED] * 2
    assert [r.text for r in await q(replies, c.pk)][-1] == "Resposta sobre: chegou na hora H"


async def test_it_does_not_wake_again_when_nothing_is_left(scaled, assistant, crm, wakes):
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    assert wakes == []


async def test_it_answers_the_stranded_message_through_the_worker(
    scaled, assistant, crm, monkeypatch
):
    c = await conversation()
    injected = []

    async def message_lands(conversation_id):
        if not injected:
            injected.append(await astore(conversation_id, "chegou na hora H"))

    monkeypatch.setattr(turn_loop, "before_release", message_lands)
    async with running_worker():
        await webhook(c.pk, "primeira")
        await wait_until(lambda: len(replies(c.pk)) == 2)
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.ANSWERED] * 2


async def test_it_keeps_the_lock_through_a_call_longer_than_its_ttl(db, assistant, crm):
    await q(configure, lock_ttl_seconds=1)
    assistant.delay_s = 2.5
    c = await conversation()
    await astore(c.pk, "demorada")
    run = asyncio.create_task(turn_loop.run_turns(c.pk))
    await asyncio.sleep(1.5)  # past the TTL, mid-call
    intruder = ConversationLock(c.pk, ttl_s=1)
    assert not await sync_to_async(intruder.try_acquire)()
    await turn_loop.run_turns(c.pk)  # a second worker's wake: returns, no second turn
    await asyncio.sleep(0.6)
    assert not await sync_to_async(intruder.try_acquire)()
    await run
    assert len(assistant.calls) == 1
    assert len(await q(turns, c.pk)) == 1
    assert [r.text for r in await q(replies, c.pk)] == ["Resposta sobre: demorada"]


async def test_it_does_not_send_when_the_lock_is_lost_mid_turn(db, assistant, crm):
    await q(configure, lock_ttl_seconds=1)
    c = await conversation()
    message = await astore(c.pk, "oi")

    async def steal_the_lock(request):
        # The lock expires (say Redis evicted it) and another worker takes it.
        await sync_to_async(cache.delete)(lock_key(c.pk))
        assert await sync_to_async(ConversationLock(c.pk, ttl_s=5).try_acquire)()

    assistant.on_call = steal_the_lock
    await turn_loop.run_turns(c.pk)
    assert await q(replies, c.pk) == []
    (turn,) = await q(turns, c.pk)
    assert turn.outcome == Turn.Outcome.LOST_LOCK
    (stored,) = await q(inbound, c.pk)
    assert stored.pk == message.pk
    assert stored.state == Message.State.PROCESSING  # left claimed for the sweeper
    assert stored.turn_id == turn.pk


# --- human handling and failures -----------------------------------------------------------


async def test_it_skips_messages_of_a_conversation_a_person_handles(scaled, assistant, crm):
    c = await conversation(handler=Conversation.Handler.HUMAN)
    await astore(c.pk, "quero falar com alguém")
    await turn_loop.run_turns(c.pk)
    assert assistant.calls == []
    assert await q(replies, c.pk) == []
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.SKIPPED]
    assert await q(turns, c.pk) == []


async def test_it_leaves_the_batch_claimed_when_the_turn_crashes(
    scaled, assistant, crm, monkeypatch, caplog
):
    from conversations.engine import turn_end

    def database_gone(*args):
        raise RuntimeError("database went away")

    monkeypatch.setattr(turn_end, "after_reply", database_gone)  # mid-turn, after the claim
    c = await conversation()
    await astore(c.pk, "oi")
    await turn_loop.run_turns(c.pk)  # does not raise: the worker goes on with other conversations
    assert await q(replies, c.pk) == []
    (message,) = await q(inbound, c.pk)
    assert message.state == Message.State.PROCESSING  # the sweeper retakes it after the TTL
    (turn,) = await q(turns, c.pk)
    assert turn.detail == "crashed: RuntimeError"
    assert "crashed" in caplog.text
    assert "oi" not in caplog.text.split()  # no message text in the log
    holder = ConversationLock(c.pk, ttl_s=5)
    assert await sync_to_async(holder.try_acquire)()  # the lock was released


# --- what the turn does around the reply ---------------------------------------------------


async def test_it_records_the_turn(scaled, assistant, crm):
    c = await conversation()
    await astore(c.pk, "um")
    newest = await astore(c.pk, "dois")
    await turn_loop.run_turns(c.pk)
    (turn,) = await q(turns, c.pk)
    assert turn.outcome == Turn.Outcome.ANSWERED
    assert turn.batch_size == 2
    assert turn.supersede_count == 0
    assert turn.lock_wait_ms >= 0
    # The messages were brand new: the turn began only after the 50 ms quiet window.
    assert turn.debounce_wait_ms > 0
    assert (turn.started_at - newest.created_at).total_seconds() >= 0.049
    assert turn.crm_ms >= 80
    assert turn.llm_ms >= 140
    assert turn.total_ms >= turn.crm_ms + turn.llm_ms
    assert turn.finished_at is not None
    (reply,) = await q(replies, c.pk)
    assert reply.turn_id == turn.pk
    assert {m.turn_id for m in await q(inbound, c.pk)} == {turn.pk}


async def test_it_builds_the_transcript_from_our_history_within_the_window(db, assistant, crm):
    await q(configure, history_window_messages=3)
    c = await conversation()
    for text in ("a", "b"):
        await astore(c.pk, text)
        await turn_loop.run_turns(c.pk)
    await astore(c.pk, "c")
    await turn_loop.run_turns(c.pk)
    transcript = assistant.calls[-1].transcript
    assert transcript == [
        {"role": "assistant", "content": "Resposta sobre: a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "Resposta sobre: b"},
        {"role": "user", "content": "c"},
    ]


async def test_it_gives_non_text_messages_a_placeholder(scaled, assistant, crm):
    c = await conversation()

    def sticker():
        return Message.objects.create(
            conversation_id=c.pk,
            direction=Message.Direction.INBOUND,
            provider_id="wamid.sticker",
            type="sticker",
            state=Message.State.PENDING,
        )

    await in_thread(sticker)()
    await turn_loop.run_turns(c.pk)
    assert request_texts(assistant.calls[0]) == ["[sticker]"]


async def test_it_waits_no_longer_than_the_max_wait_while_the_customer_keeps_typing(
    db, assistant, crm
):
    await q(configure, debounce_quiet_ms=80, debounce_max_wait_ms=200, supersede_enabled=False)
    c = await conversation()
    await astore(c.pk, "0")

    async def keep_typing():
        for n in range(1, 12):
            await asyncio.sleep(0.05)  # always inside the quiet window
            await astore(c.pk, str(n))

    typing = asyncio.create_task(keep_typing())
    await turn_loop.run_turns(c.pk)
    await typing
    first = (await q(turns, c.pk))[0]
    oldest = next(m for m in await q(inbound, c.pk) if m.turn_id == first.pk)
    # The max wait runs from the oldest message's row, as every worker measures it: the claim
    # came no earlier (a loaded machine only makes the turn start later, never the claim sooner).
    assert (oldest.claimed_at - oldest.created_at).total_seconds() >= 0.2
    assert 2 <= first.batch_size < 12  # and the turn did not wait for the customer to stop
    assert len(request_texts(assistant.calls[0])) == first.batch_size


# --- the real collaborators ----------------------------------------------------------------


async def test_it_answers_with_the_real_context_and_offline_assistant(scaled):
    c = await conversation()
    await astore(c.pk, "meu cpf é 529.982.247-25, estou sem internet")
    await turn_loop.run_turns(c.pk)
    assert [m.state for m in await q(inbound, c.pk)] == [Message.State.ANSWERED]
    (reply,) = await q(replies, c.pk)
    assert reply.text
    await q(assert_no_error_text, c.pk)


# --- against the real Redis ----------------------------------------------------------------


@pytest.mark.live
async def test_it_answers_a_burst_with_one_call_on_the_real_redis(
    live_redis_url, scaled, assistant, crm
):
    await test_it_answers_a_burst_of_three_with_one_llm_call_and_one_reply(scaled, assistant, crm)


@pytest.mark.live
async def test_it_answers_the_seeds_timeline_on_the_real_redis(
    live_redis_url, scaled, assistant, crm
):
    await test_it_answers_the_seeds_timeline_without_error_or_stale_reply(scaled, assistant, crm)


@pytest.mark.live
async def test_it_keeps_the_real_redis_lock_through_a_long_call(live_redis_url, db, assistant, crm):
    await test_it_keeps_the_lock_through_a_call_longer_than_its_ttl(db, assistant, crm)


@pytest.mark.live
async def test_it_does_not_send_after_losing_the_real_redis_lock(
    live_redis_url, db, assistant, crm
):
    await test_it_does_not_send_when_the_lock_is_lost_mid_turn(db, assistant, crm)


@pytest.mark.live
async def test_it_answers_the_stranded_message_on_the_real_redis(
    live_redis_url, scaled, assistant, crm, wakes, monkeypatch
):
    await test_it_answers_a_message_stored_between_the_last_check_and_the_release(
        scaled, assistant, crm, wakes, monkeypatch
    )


@pytest.mark.live
async def test_it_runs_one_turn_at_a_time_when_many_wakes_race_on_the_real_redis(
    live_redis_url, scaled, assistant, crm
):
    # Many workers woken at once for the same conversations: each conversation gets one turn
    # at a time and each message one answer.
    conversations = [await conversation() for _ in range(10)]
    for c in conversations:
        for n in range(3):
            await astore(c.pk, f"msg {n}")
    await asyncio.gather(*[turn_loop.run_turns(c.pk) for c in conversations for _ in range(4)])
    ids = [c.pk for c in conversations]
    await wait_until(lambda: all_settled(ids))
    assert await q(overlapping_turns, ids) == []
    for c in conversations:
        assert len(await q(replies, c.pk)) == 1
    assert len(assistant.calls) == 10


def test_store_helper_is_sync():
    # Guards the helper the benchmarks share with these tests.
    assert callable(store)
