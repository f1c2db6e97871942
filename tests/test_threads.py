"""conversations.threads: blocking units of work off the event loop."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from conversations import threads
from conversations.threads import calling_loop, in_io_thread, in_thread


async def test_a_unit_runs_in_another_thread_with_its_arguments():
    def work(a, *, b):
        return threading.get_ident(), a + b

    ident, total = await in_thread(work)(1, b=2)
    assert ident != threading.get_ident()
    assert total == 3


async def test_a_units_exception_reaches_the_caller():
    def broken():
        raise ValueError("boom")

    try:
        await in_thread(broken)()
    except ValueError as exc:
        assert str(exc) == "boom"
    else:
        raise AssertionError("the exception was swallowed")


async def test_a_unit_drops_the_threads_connection_before_and_after(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "close_old_connections", lambda: calls.append("close"))
    await in_thread(lambda: calls.append("work"))()
    assert calls == ["close", "work", "close"]


async def test_a_slow_unit_runs_on_the_slow_io_pool_and_closes_its_connections(monkeypatch):
    closed = []
    monkeypatch.setattr(threads.connections, "close_all", lambda: closed.append(True))
    name = await in_io_thread(lambda: threading.current_thread().name)()
    assert name.startswith("supportbot-slow-io")
    assert closed == [True]


async def test_a_unit_knows_the_loop_that_awaits_it_and_forgets_it_after():
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(1))  # the same thread runs both calls below
    assert await in_thread(calling_loop)() is loop
    assert await loop.run_in_executor(None, calling_loop) is None
    assert calling_loop() is None


async def test_a_started_unit_finishes_when_its_caller_is_cancelled():
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait(5)
        finished.set()

    task = asyncio.create_task(in_thread(work)())
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    release.set()
    assert await asyncio.to_thread(finished.wait, 5)


async def test_a_unit_not_yet_started_never_runs_once_cancelled():
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(1))
    release, ran = threading.Event(), []
    busy = asyncio.create_task(in_thread(release.wait)(5))  # holds the only thread
    queued = asyncio.create_task(in_thread(lambda: ran.append(True))())
    await asyncio.sleep(0.05)
    queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)
    release.set()
    await busy
    await in_thread(lambda: None)()  # anything queued before this has run by now
    assert ran == []


async def test_every_runs_now_and_again_and_outlives_a_failure(caplog):
    calls = []

    def chore():
        calls.append(len(calls))
        if len(calls) == 1:
            raise OSError("down")

    task = asyncio.ensure_future(threads.every(0.01, chore, "chore failed"))
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert len(calls) >= 3  # the first round failed, the next ones still ran
    assert "chore failed (OSError)" in caplog.text
