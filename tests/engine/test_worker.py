"""The inbound worker consumer (conversations.engine.worker) through the ASGI channel router."""

import asyncio
import contextlib

import pytest
from channels.testing import ApplicationCommunicator

from conversations.engine import turn_loop, worker
from conversations.events import INBOUND_CHANNEL, WAKE_EVENT, wake_event
from conversations.models import Message, RuntimeSettings
from conversations.threads import in_thread
from supportbot.asgi import application  # imported early: it runs django.setup() (logging)
from tests.fakes.engine import (
    all_settled,
    assistant,  # noqa: F401 (fixture)
    astore,
    fresh_channel_layer,
    install_crm,
    new_conversation,
    replies,
    scaled,  # noqa: F401 (fixture)
    short_lived_connections,  # noqa: F401 (autouse fixture)
    stop_scheduler,
    store,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crm(monkeypatch):
    """A faster CRM than tests/fakes/engine.py's: these tests answer many conversations."""
    return install_crm(monkeypatch, delay_s=0.02)


@contextlib.asynccontextmanager
async def consumer():
    """The worker as `runworker` gets it: the project's ASGI app with a channel scope."""
    fresh_channel_layer()
    communicator = ApplicationCommunicator(
        application, {"type": "channel", "channel": INBOUND_CHANNEL}
    )
    try:
        yield communicator
    finally:
        await stop_scheduler()
        communicator.stop()


async def conversation_with(*texts):
    c = await in_thread(new_conversation)()
    for text in texts:
        await astore(c.pk, text)
    return c


async def q(fn, *args, **kwargs):
    return await in_thread(fn)(*args, **kwargs)


async def test_it_answers_a_wake_through_the_channel_router(scaled, assistant, crm):
    c = await conversation_with("oi")
    async with consumer() as communicator:
        await communicator.send_input(wake_event(c.pk))
        await wait_until(lambda: len(replies(c.pk)) == 1)
    assert [m.text for m in await q(replies, c.pk)] == ["Resposta sobre: oi"]


async def test_it_accepts_a_wake_that_went_through_json(scaled, assistant, crm):
    import json

    c = await conversation_with("oi")
    async with consumer() as communicator:
        await communicator.send_input(json.loads(json.dumps(wake_event(c.pk))))
        await wait_until(lambda: len(replies(c.pk)) == 1)


@pytest.mark.parametrize(
    "event",
    [
        {"type": WAKE_EVENT},
        {"type": WAKE_EVENT, "conversation_id": "12"},
        {"type": WAKE_EVENT, "conversation_id": None},
        {"type": WAKE_EVENT, "conversation_id": 0},
        {"type": WAKE_EVENT, "conversation_id": -3},
        {"type": WAKE_EVENT, "conversation_id": True},
        {"type": WAKE_EVENT, "conversation_id": 1.5},
        {"type": WAKE_EVENT, "conversation_id": [1]},
    ],
)
async def test_it_logs_and_ignores_a_malformed_wake(event, scaled, assistant, crm, caplog):
    c = await conversation_with("oi")
    async with consumer() as communicator:
        await communicator.send_input(event)
        await asyncio.sleep(0.05)
        assert "malformed" in caplog.text
        assert worker.get_scheduler().tasks == {}
        # The consumer is still alive and answers the next good wake.
        await communicator.send_input(wake_event(c.pk))
        await wait_until(lambda: len(replies(c.pk)) == 1)


def test_it_parses_only_positive_integer_ids():
    assert worker.parse_wake({"type": WAKE_EVENT, "conversation_id": 7}) == 7
    assert worker.parse_wake({"type": WAKE_EVENT, "conversation_id": "7"}) is None
    assert worker.parse_wake("not a dict") is None


async def test_it_ignores_a_wake_for_a_conversation_that_does_not_exist(scaled, assistant, crm):
    async with consumer() as communicator:
        await communicator.send_input(wake_event(999999))
        await asyncio.sleep(0.1)
        await worker.get_scheduler().drain()
    assert assistant.calls == []


async def test_it_keeps_many_conversations_in_flight(scaled, assistant, crm):
    assistant.delay_s = 0.4
    conversations = [await conversation_with(f"pergunta {n}") for n in range(20)]
    async with consumer() as communicator:
        for c in conversations:
            await communicator.send_input(wake_event(c.pk))
        # Every wake was taken while earlier turns were still waiting on the model.
        await wait_until(lambda: all_settled([c.pk for c in conversations]), timeout_s=10)
    assert assistant.max_active >= 10
    for c in conversations:
        assert len(await q(replies, c.pk)) == 1


async def test_it_bounds_the_turns_in_flight(scaled, assistant, crm, settings):
    settings.WORKER_MAX_TURNS = 3
    conversations = [await conversation_with("oi") for _ in range(8)]
    async with consumer() as communicator:
        for c in conversations:
            await communicator.send_input(wake_event(c.pk))
        await wait_until(lambda: all_settled([c.pk for c in conversations]), timeout_s=10)
    assert assistant.max_active == 3


async def test_it_coalesces_wakes_for_a_conversation_it_is_already_running(
    scaled, assistant, crm, monkeypatch
):
    runs = []
    real_run_turns = turn_loop.run_turns

    async def counted(conversation_id, **kwargs):
        runs.append(conversation_id)
        await real_run_turns(conversation_id, **kwargs)

    monkeypatch.setattr(turn_loop, "run_turns", counted)
    assistant.delay_s = 0.3
    c = await conversation_with("oi")
    async with consumer() as communicator:
        await communicator.send_input(wake_event(c.pk))
        await asyncio.sleep(0.1)
        scheduler = worker.get_scheduler()
        late = await astore(c.pk, "mais uma")
        for _ in range(5):
            await communicator.send_input(wake_event(c.pk))
        await asyncio.sleep(0.05)
        assert len(scheduler.tasks) == 1
        await wait_until(lambda: all_settled([c.pk]))
        await scheduler.drain()
    # One task, one run: the wakes came before the engine's last look, which saw their message.
    assert runs == [c.pk]
    stored = await q(Message.objects.get, pk=late.pk)
    assert stored.state == Message.State.ANSWERED


async def test_it_runs_again_for_a_wake_that_came_after_the_engines_last_look(
    scaled, assistant, crm, monkeypatch
):
    # A message committed right after the last look (after the release): its wake reaches this
    # worker while the task is still finishing, so only another run can answer it.
    c = await conversation_with("oi")
    loop = asyncio.get_running_loop()
    real_release_and_check = turn_loop._release_and_check
    late = []

    def release_and_check(lock, conversation_id):
        left_behind = real_release_and_check(lock, conversation_id)
        if not late:
            late.append(store(conversation_id, "logo depois"))
            loop.call_soon_threadsafe(scheduler.wake, conversation_id)
        return left_behind

    monkeypatch.setattr(turn_loop, "_release_and_check", release_and_check)
    async with consumer() as communicator:
        scheduler = worker.get_scheduler()
        await communicator.send_input(wake_event(c.pk))
        await wait_until(lambda: len(replies(c.pk)) == 2)
        await worker.get_scheduler().drain()
    stored = await q(Message.objects.get, pk=late[0].pk)
    assert stored.state == Message.State.ANSWERED


async def test_it_sets_the_thread_pool_and_starts_one_sweeper_per_loop(scaled, settings):
    async with consumer():
        first = worker.get_scheduler()
        assert worker.get_scheduler() is first
        loop = asyncio.get_running_loop()
        assert loop._default_executor._max_workers == settings.WORKER_THREADS
        assert not first.sweeper.done()


async def test_it_goes_on_after_a_turn_loop_fails(scaled, assistant, crm, monkeypatch, caplog):
    real_run_turns = turn_loop.run_turns
    calls = []

    async def fails_once(conversation_id, **kwargs):
        calls.append(conversation_id)
        if len(calls) == 1:
            raise RuntimeError("Redis down")
        await real_run_turns(conversation_id, **kwargs)

    monkeypatch.setattr(turn_loop, "run_turns", fails_once)
    c = await conversation_with("oi")
    async with consumer() as communicator:
        await communicator.send_input(wake_event(c.pk))
        await asyncio.sleep(0.1)
        assert "turn loop failed" in caplog.text
        assert worker.get_scheduler().tasks == {}
        await communicator.send_input(wake_event(c.pk))
        await wait_until(lambda: len(replies(c.pk)) == 1)


async def test_it_sees_a_settings_change_within_5_seconds(scaled, assistant, crm):
    # The runtime cache (conversations.runtime) reloads every ~2 s; this checks the whole path:
    # a change saved while the worker runs reaches its next turns without a restart.
    assistant.delay_s = 0.01
    async with consumer() as communicator:
        c = await conversation_with("antes")
        await communicator.send_input(wake_event(c.pk))
        await wait_until(lambda: len(replies(c.pk)) == 1)

        def save_new_instructions():
            row = RuntimeSettings.objects.get(pk=1)
            row.assistant_instructions = "Instruções novas."
            row.save()

        await q(save_new_instructions)  # no cache reset: the worker must notice by itself
        saved = asyncio.get_running_loop().time()
        while assistant.calls[-1].instructions != "Instruções novas.":
            assert asyncio.get_running_loop().time() - saved < 5, "not seen within 5 s"
            await astore(c.pk, "de novo")
            await communicator.send_input(wake_event(c.pk))
            await asyncio.sleep(0.25)
