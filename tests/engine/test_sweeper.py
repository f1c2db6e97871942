"""The sweeper (conversations.engine.sweeper): the database is the queue of record, wakes are not."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from conversations import events
from conversations.engine import sweeper, turn_loop, turn_run
from conversations.engine.locks import ConversationLock
from conversations.keys import lock_key
from conversations.models import Message, Turn
from conversations.threads import in_thread
from tests.fakes.engine import (
    FakeAssistant,
    FakeCrm,
    configure,
    inbound,
    new_conversation,
    replies,
    running_worker,
    short_lived_connections,  # noqa: F401 (autouse fixture)
    store,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def runtime(db):
    return configure(lock_ttl_seconds=10)


def aged(message: Message, seconds: float) -> Message:
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
    message.refresh_from_db()
    return message


def claimed(conversation_id: int, text: str, claim_age_s: float) -> Message:
    """A message a worker claimed claim_age_s ago (its turn still `running`)."""
    message = aged(store(conversation_id, text), claim_age_s + 1)
    turn = Turn.objects.create(conversation_id=conversation_id)
    Message.objects.filter(pk=message.pk).update(
        state=Message.State.PROCESSING,
        claimed_at=timezone.now() - timedelta(seconds=claim_age_s),
        turn=turn,
    )
    message.refresh_from_db()
    return message


def test_it_finds_pending_messages_whose_wake_was_lost(runtime):
    old = new_conversation()
    young = new_conversation()
    aged(store(old.pk, "oi"), 30)
    aged(store(old.pk, "alô"), 20)
    store(young.pk, "acabou de chegar")
    report = sweeper.sweep()
    assert report.stale_pending == {old.pk: 2}
    assert report.to_wake == [old.pk]


def test_it_ignores_settled_and_outbound_messages(runtime):
    c = new_conversation()
    message = aged(store(c.pk, "oi"), 30)
    Message.objects.filter(pk=message.pk).update(state=Message.State.ANSWERED)
    Message.objects.create(
        conversation=c, direction=Message.Direction.OUTBOUND, text="resposta", kind="reply"
    )
    assert sweeper.sweep().to_wake == []


def test_it_puts_a_dead_workers_claims_back_in_order(runtime):
    c = new_conversation()
    first = claimed(c.pk, "primeira", claim_age_s=15)
    second = claimed(c.pk, "segunda", claim_age_s=15)
    later = store(c.pk, "depois")
    report = sweeper.sweep()
    assert report.dead_claims == {c.pk: 2}
    assert report.to_wake == [c.pk]
    states = [(m.pk, m.state, m.claimed_at) for m in inbound(c.pk)]
    assert states == [
        (first.pk, Message.State.PENDING, None),
        (second.pk, Message.State.PENDING, None),
        (later.pk, Message.State.PENDING, None),
    ]
    turn = Turn.objects.get(pk=first.turn_id)
    assert turn.outcome == Turn.Outcome.LOST_LOCK
    assert turn.finished_at is not None


def test_it_leaves_the_claims_of_a_live_long_turn(runtime):
    c = new_conversation()
    claimed(c.pk, "demorada", claim_age_s=15)
    lock = ConversationLock(c.pk, ttl_s=10)
    assert lock.try_acquire()  # the holder renews it: still alive
    try:
        report = sweeper.sweep()
    finally:
        lock.release()
    assert report.live_claims == {c.pk: 1}
    assert report.dead_claims == {}
    assert report.to_wake == []
    assert [m.state for m in inbound(c.pk)] == [Message.State.PROCESSING]


def test_it_leaves_claims_younger_than_the_lock_ttl(runtime):
    c = new_conversation()
    claimed(c.pk, "em andamento", claim_age_s=5)
    report = sweeper.sweep()
    assert report.to_wake == []
    assert [m.state for m in inbound(c.pk)] == [Message.State.PROCESSING]


def test_it_changes_nothing_on_a_dry_run(runtime):
    c = new_conversation()
    claimed(c.pk, "primeira", claim_age_s=15)
    report = sweeper.sweep(dry_run=True)
    assert report.dead_claims == {c.pk: 1}
    assert [m.state for m in inbound(c.pk)] == [Message.State.PROCESSING]
    assert Turn.objects.get().outcome == Turn.Outcome.RUNNING


def test_it_sweeps_every_quarter_lock_ttl_within_bounds(db):
    configure(lock_ttl_seconds=120)
    assert sweeper.interval_seconds() == 30
    configure(lock_ttl_seconds=60)
    assert sweeper.interval_seconds() == 15
    configure(lock_ttl_seconds=10)
    assert sweeper.interval_seconds() == 5


async def test_it_wakes_what_it_found(runtime, monkeypatch):
    woken = []

    async def record(conversation_id):
        woken.append(conversation_id)
        return True

    monkeypatch.setattr(events, "asend_wake", record)
    c = await in_thread(new_conversation)()
    await in_thread(lambda: aged(store(c.pk, "oi"), 30))()
    report = await sweeper.sweep_once()
    assert woken == [c.pk] == report.to_wake


async def test_it_keeps_sweeping_after_a_failure(runtime, monkeypatch, caplog):
    rounds = []

    def flaky(dry_run=False):
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("database down")
        return sweeper.SweepReport()

    monkeypatch.setattr(sweeper, "sweep", flaky)
    monkeypatch.setattr(sweeper, "interval_seconds", lambda: 0.01)
    task = asyncio.create_task(sweeper.sweep_forever())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(rounds) >= 3
    assert "sweep failed: RuntimeError" in caplog.text


async def test_it_gets_a_dead_workers_message_answered_exactly_once(db, monkeypatch):
    # A turn claims the message, then its worker "dies": the lock is lost before sending. After
    # the lock TTL the sweeper puts the message back and the worker answers it, once.
    await in_thread(configure)(lock_ttl_seconds=1)
    assistant = FakeAssistant(delay_s=0.05)
    monkeypatch.setattr(turn_run, "generate_reply", assistant)
    monkeypatch.setattr(turn_run, "build_customer_context", FakeCrm(delay_s=0.01))

    async def worker_dies(request):
        if len(assistant.calls) == 1:
            await sync_to_async(cache.delete)(lock_key(request_conversation[0]))

    assistant.on_call = worker_dies
    c = await in_thread(new_conversation)()
    request_conversation = [c.pk]
    await in_thread(store)(c.pk, "oi")
    await turn_loop.run_turns(c.pk)
    assert await in_thread(replies)(c.pk) == []
    await asyncio.sleep(1.1)  # the claim outlives the lock TTL
    async with running_worker():
        report = await sweeper.sweep_once()
        assert report.dead_claims == {c.pk: 1}
        await wait_until(lambda: len(replies(c.pk)) == 1)
        await asyncio.sleep(0.2)
    (reply,) = await in_thread(replies)(c.pk)
    assert reply.text == "Resposta sobre: oi"
    (message,) = await in_thread(inbound)(c.pk)
    assert message.state == Message.State.ANSWERED
    assert message.turn_id == reply.turn_id


@pytest.mark.live
def test_it_leaves_a_live_turn_alone_on_the_real_redis(live_redis_url, runtime):
    test_it_leaves_the_claims_of_a_live_long_turn(runtime)


@pytest.mark.live
def test_it_resets_a_dead_claim_on_the_real_redis(live_redis_url, runtime):
    test_it_puts_a_dead_workers_claims_back_in_order(runtime)


@pytest.mark.live
async def test_it_gets_a_dead_workers_message_answered_once_on_the_real_redis(
    live_redis_url, db, monkeypatch
):
    await test_it_gets_a_dead_workers_message_answered_exactly_once(db, monkeypatch)
