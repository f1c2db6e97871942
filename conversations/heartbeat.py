"""Workers' heartbeats: every worker process (`runworker`, `serve`) writes its id and the time
into one Redis sorted set every few seconds; the dashboard, `/metrics` and `stats` count the ids
seen lately. A worker that stops beating drops out after ALIVE_WITHIN_S."""

import asyncio
import contextlib
import logging
import os
import socket
import time

from django.core.cache import cache

from conversations import keys
from conversations.threads import every, in_thread

logger = logging.getLogger(__name__)

INTERVAL_S = 5.0
ALIVE_WITHIN_S = 15.0


def worker_id() -> str:
    """Host name and process id: enough to find the process, no personal data."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _client():
    return cache.client.get_client(write=True)


def beat(worker: str | None = None, now: float | None = None) -> None:
    key = cache.make_key(keys.HEARTBEATS_KEY)
    now = time.time() if now is None else now
    pipe = _client().pipeline(transaction=False)
    pipe.zadd(key, {worker or worker_id(): now})
    pipe.zremrangebyscore(key, "-inf", now - ALIVE_WITHIN_S)  # forget the dead
    pipe.expire(key, int(ALIVE_WITHIN_S * 4))
    pipe.execute()


def forget(worker: str | None = None) -> None:
    """A worker that stops cleanly leaves at once."""
    _client().zrem(cache.make_key(keys.HEARTBEATS_KEY), worker or worker_id())


def alive(now: float | None = None) -> list[tuple[str, float]]:
    """(worker id, seconds since its last beat) of the workers seen within ALIVE_WITHIN_S."""
    now = time.time() if now is None else now
    rows = _client().zrangebyscore(
        cache.make_key(keys.HEARTBEATS_KEY), now - ALIVE_WITHIN_S, "+inf", withscores=True
    )
    return [
        (member.decode() if isinstance(member, bytes) else member, max(0.0, now - score))
        for member, score in rows
    ]


async def beat_forever() -> None:
    """Beat now, then every INTERVAL_S, until cancelled; a Redis failure only skips a beat."""
    try:
        await every(INTERVAL_S, beat, "worker heartbeat failed")
    finally:
        # Redis down: the entry expires after ALIVE_WITHIN_S anyway.
        with contextlib.suppress(Exception):
            await asyncio.shield(in_thread(forget)())
