"""Blocking work (ORM, Redis lock calls, CRM, Cloud API) off the event loop, as units of work.

A turn makes about six such hops, so each one costs a `run_in_executor` and nothing more.
asgiref's `sync_to_async` did much more per call (a wrapper built per call, the caller's context
copied into the thread and back, its Local storage re-homed both ways): that machinery was most
of the event loop's CPU per turn.

A unit runs in its pool thread's own context, like a request in a threaded server: nothing in a
unit reads the caller's context variables, and Django's per-context objects (the cache client
behind `django.core.cache.cache` lives in an asgiref Local) are then built once per thread. In a
copy of the caller's context they would be built again on every hop, since asgiref's Local hides
storage that another thread created.

Cancelling the awaiting task does not stop a unit that has started (a thread cannot be
interrupted): it finishes and its result is dropped. A unit not yet started never runs. The
engine's state changes are conditional updates, so a dropped result never corrupts the queue.
"""

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections

from conversations import log_context

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_running = threading.local()  # .loop: the event loop that awaits this thread's unit


def calling_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop awaiting the unit this thread runs, or None outside a unit.

    For sync code that must run a coroutine on that loop (the channel layer's objects are bound
    to it): asgiref's async_to_sync only finds it in threads that sync_to_async started.
    """
    return getattr(_running, "loop", None)


def _short_unit(loop, fn, args, kwargs, log_ids=log_context.EMPTY):
    # Drop the thread's connection before and after, as Django does around a request: on
    # PostgreSQL it goes back to the pool (settings.DATABASES), so connections stay bounded by
    # the pool size, not by the number of threads.
    _running.loop = loop
    logged = log_context.restore(log_ids)  # only the log ids cross, not the whole context
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()
        log_context.reset(logged)
        _running.loop = None


def _slow_unit(loop, fn, args, kwargs, log_ids=log_context.EMPTY):
    _running.loop = loop
    logged = log_context.restore(log_ids)
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()
        log_context.reset(logged)
        _running.loop = None


def in_thread(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`await in_thread(fn)(*args)`: run a short blocking function (a few queries, a Redis round
    trip) on the loop's default executor (WORKER_THREADS in a worker) as one unit of work."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        ids = log_context.current()
        return await loop.run_in_executor(None, _short_unit, loop, fn, args, kwargs, ids)

    return call


_io_executor: ThreadPoolExecutor | None = None
_io_lock = threading.Lock()


def slow_io_executor() -> ThreadPoolExecutor:
    global _io_executor
    if _io_executor is None:
        with _io_lock:
            if _io_executor is None:
                _io_executor = ThreadPoolExecutor(
                    settings.WORKER_MAX_TURNS, thread_name_prefix="supportbot-slow-io"
                )
    return _io_executor


def in_io_thread(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Like `in_thread`, for a slow blocking call (the CRM lookup, a Cloud API call).

    These take seconds, so they get their own pool, sized to WORKER_MAX_TURNS (one per turn in
    flight): on the short-unit pool a burst of new customers would queue behind WORKER_THREADS
    CRM calls. They close their database connection when done, so PostgreSQL connections stay
    bounded by WORKER_THREADS; a reconnect is nothing next to a CRM call.
    """

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        ids = log_context.current()
        return await loop.run_in_executor(
            slow_io_executor(), _slow_unit, loop, fn, args, kwargs, ids
        )

    return call


async def every(interval_s: float, fn: Callable[[], object], failure: str) -> None:
    """Run `fn` as a unit of work now, then every `interval_s`, until cancelled. A failure is
    logged ("<failure> (<error type>)") and the next round tries again: a worker's periodic
    chores (runtime refresh, heartbeat, dashboard rollups) never stop the worker."""
    while True:
        try:
            await in_thread(fn)()
        except Exception as exc:
            logger.warning("%s (%s)", failure, type(exc).__name__)
        await asyncio.sleep(interval_s)
