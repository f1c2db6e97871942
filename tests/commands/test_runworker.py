"""`manage.py runworker`'s worker (also run inside `serve`): sweeper at start, listening again
after channel layer errors, graceful stop. The processes themselves: test_e2e_processes.py."""

import asyncio
import contextlib

import pytest
from channels.layers import InMemoryChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError

from conversations.engine import sweeper, worker
from conversations.engine.worker import InboundWorker, get_scheduler
from conversations.events import INBOUND_CHANNEL, wake_event
from conversations.management.commands import runworker
from conversations.management.commands.runworker import InboundChannelWorker


@pytest.fixture(autouse=True)
def no_database(monkeypatch):
    # The sweeper and the runtime refresher start, but touch no database during these tests.
    monkeypatch.setattr(sweeper, "interval_seconds", lambda: 3600)
    monkeypatch.setattr(runworker, "get_runtime", lambda: None)


@pytest.fixture
def turns(monkeypatch):
    """engine.run_turns replaced by a turn of `turns.seconds` that records its end."""

    class Turns:
        def __init__(self):
            self.seconds = 0.2
            self.finished: list[int] = []
            self.cancelled: list[int] = []

        async def __call__(self, conversation_id, on_last_look=None):
            try:
                await asyncio.sleep(self.seconds)
            except asyncio.CancelledError:
                self.cancelled.append(conversation_id)
                raise
            self.finished.append(conversation_id)

    fake = Turns()
    monkeypatch.setattr(worker.turn_loop, "run_turns", fake)
    return fake


def _worker(layer) -> InboundChannelWorker:
    return InboundChannelWorker(
        application=InboundWorker.as_asgi(), channels=[INBOUND_CHANNEL], channel_layer=layer
    )


async def _until(predicate, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_it_starts_the_sweeper_before_any_wake_arrives():
    inbound = _worker(InMemoryChannelLayer())
    inbound.start()
    await asyncio.sleep(0.05)

    scheduler = get_scheduler()
    assert not scheduler.sweeper.done()
    await inbound.stop(grace=1)
    assert scheduler.sweeper.done()


async def test_it_answers_a_wake_from_the_channel(turns):
    layer = InMemoryChannelLayer()
    inbound = _worker(layer)
    inbound.start()

    await layer.send(INBOUND_CHANNEL, wake_event(7))

    await _until(lambda: turns.finished == [7])
    await inbound.stop(grace=1)


async def test_it_listens_again_after_a_channel_layer_error(monkeypatch, turns):
    monkeypatch.setattr(runworker, "RESTART_BASE_MS", 10)

    class FlakyLayer(InMemoryChannelLayer):
        failures = 2

        async def receive(self, channel):
            if self.failures:
                self.failures -= 1
                raise RedisConnectionError("Redis is down")
            return await super().receive(channel)

    layer = FlakyLayer()
    inbound = _worker(layer)
    inbound.start()
    await layer.send(INBOUND_CHANNEL, wake_event(8))

    await _until(lambda: turns.finished == [8])
    assert layer.failures == 0
    assert not inbound.task.done()
    await inbound.stop(grace=1)


async def test_it_lets_running_turns_finish_when_stopped(turns):
    layer = InMemoryChannelLayer()
    inbound = _worker(layer)
    inbound.start()
    await layer.send(INBOUND_CHANNEL, wake_event(9))
    await _until(lambda: get_scheduler().tasks)

    await inbound.stop(grace=5)

    assert turns.finished == [9]
    assert turns.cancelled == []
    assert inbound.task.done()


async def test_it_cancels_turns_still_running_after_the_grace_period(turns):
    turns.seconds = 30
    layer = InMemoryChannelLayer()
    inbound = _worker(layer)
    inbound.start()
    await layer.send(INBOUND_CHANNEL, wake_event(10))
    await _until(lambda: get_scheduler().tasks)

    await inbound.stop(grace=0.1)

    assert turns.cancelled == [10]
    assert turns.finished == []
    assert not get_scheduler().tasks


async def test_it_takes_no_wakes_once_stopped(turns):
    layer = InMemoryChannelLayer()
    inbound = _worker(layer)
    inbound.start()
    await asyncio.sleep(0.05)
    await inbound.stop(grace=1)

    await layer.send(INBOUND_CHANNEL, wake_event(11))
    await asyncio.sleep(0.3)

    assert turns.finished == []


async def test_it_reloads_the_runtime_settings_while_it_runs(monkeypatch):
    reloads = []
    monkeypatch.setattr(runworker, "RUNTIME_REFRESH_SECONDS", 0.01)
    monkeypatch.setattr(runworker, "get_runtime", lambda: reloads.append(1))
    inbound = _worker(InMemoryChannelLayer())
    inbound.start()

    await _until(lambda: len(reloads) >= 3)
    await inbound.stop(grace=1)
    stopped_at = len(reloads)
    await asyncio.sleep(0.1)

    assert len(reloads) == stopped_at


async def test_it_keeps_reloading_after_a_failed_reload(monkeypatch):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")

    monkeypatch.setattr(runworker, "RUNTIME_REFRESH_SECONDS", 0.01)
    monkeypatch.setattr(runworker, "get_runtime", flaky)
    inbound = _worker(InMemoryChannelLayer())
    inbound.start()

    await _until(lambda: len(calls) >= 3)
    await inbound.stop(grace=1)


def _swallows_its_first_cancel(forever: asyncio.Event):
    """What redis-py's send does on Python 3.11 when the cancel lands as asyncio.wait_for's inner
    future completes: wait_for returns normally, and the caller goes on (here: waits for ever)."""

    async def coroutine(*args, **kwargs):
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await forever.wait()

    return coroutine


async def test_cancel_and_wait_cancels_again_a_task_that_swallowed_the_cancel():
    task = asyncio.ensure_future(_swallows_its_first_cancel(asyncio.Event())())
    await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await runworker.cancel_and_wait([task], recancel_s=0.05)

    assert task.cancelled()


async def test_it_stops_even_when_a_listener_swallows_the_cancel(monkeypatch):
    layer = InMemoryChannelLayer()
    monkeypatch.setattr(layer, "receive", _swallows_its_first_cancel(asyncio.Event()))
    monkeypatch.setattr(runworker, "RECANCEL_SECONDS", 0.05)
    inbound = _worker(layer)
    inbound.start()
    await asyncio.sleep(0.05)

    async with asyncio.timeout(5):
        await inbound.stop(grace=1)

    assert inbound.task.done()
    assert inbound.listeners and all(listener.done() for listener in inbound.listeners)


async def test_it_stops_even_when_a_turn_swallows_the_cancel(monkeypatch):
    monkeypatch.setattr(worker.turn_loop, "run_turns", _swallows_its_first_cancel(asyncio.Event()))
    monkeypatch.setattr(runworker, "RECANCEL_SECONDS", 0.05)
    layer = InMemoryChannelLayer()
    inbound = _worker(layer)
    inbound.start()
    await layer.send(INBOUND_CHANNEL, wake_event(12))
    await _until(lambda: get_scheduler().tasks)
    turn = get_scheduler().tasks[12]

    async with asyncio.timeout(5):
        await inbound.stop(grace=0.1)

    assert turn.done()
    assert not get_scheduler().tasks


@pytest.mark.live
async def test_it_stops_while_wakes_flow_through_the_real_redis_layer(live_redis_url, turns):
    from channels_redis.core import RedisChannelLayer

    turns.seconds = 0
    layer = RedisChannelLayer(
        hosts=[{"address": live_redis_url, "socket_timeout": 30}], prefix="test-stop"
    )
    await layer.flush()

    async def send_wakes(count: int) -> None:
        for n in range(count):
            await layer.send(INBOUND_CHANNEL, wake_event(n + 1))
            await asyncio.sleep(0.001 * (n % 3))

    for round_ in range(30):
        inbound = _worker(layer)
        inbound.start()
        sending = asyncio.ensure_future(send_wakes(round_ % 20))
        await asyncio.sleep(0.001 * (round_ % 25))
        # Stopped mid-flow: a cancel landing as a Redis command completes used to be lost (the
        # listener then read on for ever). Every stop must end, its listeners with it.
        async with asyncio.timeout(10):
            await inbound.stop(grace=1)
        assert inbound.task.done()
        assert all(listener.done() for listener in inbound.listeners)
        await sending
    await layer.flush()
