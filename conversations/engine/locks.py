"""The conversation lock: at most one turn per conversation at any moment, across all workers.

A redis-py Lock through django-redis (SET NX PX with a unique token; release and renewal are Lua
scripts that check the token), with a new Lock object per acquisition. Nothing renews a redis-py
lock by itself, so a turn runs inside `renewed(lock)`, which extends it in the background and sets
`keeper.lost` when the lock turns out to be gone: the engine must then stop before sending.

    lock = ConversationLock(conversation.id, ttl_s=runtime.lock_ttl_seconds)
    if not lock.try_acquire():
        return  # the holder takes our message
    try:
        async with renewed(lock) as keeper:
            ...
            if keeper.lost.is_set() or not await keeper.confirm():
                return  # another worker may be answering: do not send
    finally:
        lock.release()

Redis failures in try_acquire/acquire/renew/owned raise LockUnavailable; release never raises.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import LockError, RedisError

from conversations import metrics
from conversations.backoff import wait_with_backoff
from conversations.keys import lock_key

logger = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, ConnectionInterrupted, OSError)

# Renewals run on their own few threads: a default executor saturated by slow CRM calls must not
# delay them past the TTL. Each call is one short Redis round trip (socket timeout 1 s).
_RENEW_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lock-renew")


class LockUnavailable(Exception):
    """Redis could not be reached: whether the lock is held is unknown."""


class ConversationLock:
    def __init__(self, conversation_id: int, ttl_s: float):
        if ttl_s <= 0:
            raise ValueError("lock TTL must be positive")
        self.conversation_id = int(conversation_id)
        self.ttl_s = ttl_s
        self.key = lock_key(conversation_id)
        # Set by acquire(): how long it waited and how many attempts it took (for the turn record).
        self.waited_s = 0.0
        self.attempts = 0
        self._lock = None  # the redis-py Lock of the current acquisition
        self._mutex = threading.Lock()  # renewals and release come from different threads

    def __repr__(self) -> str:
        return (
            f"<ConversationLock conversation={self.conversation_id} held={self._lock is not None}>"
        )

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        with self._mutex:
            if self._lock is not None:
                raise RuntimeError(f"{self!r} is already held by this object")
            # thread_local=False: the token must be visible to the renewal and release threads.
            lock = cache.lock(self.key, timeout=self.ttl_s, thread_local=False)
            try:
                acquired = lock.acquire(blocking=False)
            except REDIS_ERRORS as exc:
                raise LockUnavailable(type(exc).__name__) from exc
            if acquired:
                self._lock = lock
            return acquired

    def acquire(
        self,
        wait_timeout_s: float,
        base_ms: int,
        cap_ms: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> bool:
        """Wait for the lock with exponential backoff (base doubling to cap) up to wait_timeout_s."""
        acquired, self.attempts, self.waited_s = wait_with_backoff(
            self.try_acquire,
            base_ms=base_ms,
            cap_ms=cap_ms,
            timeout_s=wait_timeout_s,
            what=f"conversation {self.conversation_id} lock",
            sleep=sleep,
            clock=clock,
        )
        return acquired

    def renew(self) -> bool:
        """Extend the lock back to the full TTL if it is still ours; False when it was lost."""
        with self._mutex:
            if self._lock is None:
                return False
            try:
                self._lock.reacquire()
            except LockError:  # LockNotOwnedError included: expired or taken by another worker
                logger.warning("conversation %s lock lost before renewal", self.conversation_id)
                metrics.inc(metrics.LOCK_LOST)
                self._lock = None
                return False
            except REDIS_ERRORS as exc:
                raise LockUnavailable(type(exc).__name__) from exc
            return True

    def release(self) -> bool:
        """Let go. False when it was no longer ours (or Redis failed: the TTL frees it then)."""
        with self._mutex:
            lock, self._lock = self._lock, None
            if lock is None:
                return False
            try:
                lock.release()
            except LockError:
                logger.warning("conversation %s lock was no longer ours", self.conversation_id)
                return False
            except REDIS_ERRORS as exc:
                logger.warning(
                    "conversation %s lock not released (%s); it expires by its TTL",
                    self.conversation_id,
                    type(exc).__name__,
                )
                return False
            return True

    def owned(self) -> bool:
        """True while Redis still holds our token under the key."""
        with self._mutex:
            if self._lock is None:
                return False
            try:
                return self._lock.owned()
            except REDIS_ERRORS as exc:
                raise LockUnavailable(type(exc).__name__) from exc


class LockKeeper:
    """Renews a held lock every `interval_s` on a background task (see `renewed`)."""

    def __init__(self, lock: ConversationLock, interval_s: float):
        self.lock = lock
        self.interval_s = interval_s
        self.lost = asyncio.Event()  # set once: the lock is gone, do not send
        self.renewals = 0
        self._last_renewed = time.monotonic()

    async def _call(self, method: Callable[[], bool]) -> bool:
        return await asyncio.get_running_loop().run_in_executor(_RENEW_EXECUTOR, method)

    async def confirm(self) -> bool:
        """Renew now and tell whether the lock is still ours: call it right before sending.

        A Redis error counts as not ours: sending without knowing could answer twice, while not
        sending leaves the messages for the next turn.
        """
        if self.lost.is_set():
            return False
        try:
            if await self._call(self.lock.renew):
                self._last_renewed = time.monotonic()
                return True
        except LockUnavailable:
            return False
        self.lost.set()
        return False

    async def run(self) -> None:
        """Renew now, then every interval_s, until the lock is lost (or the task is cancelled)."""
        while not self.lost.is_set():
            delay = self.interval_s
            try:
                still_ours = await self._call(self.lock.renew)
            except Exception as exc:  # LockUnavailable, or anything else: never die silently
                # Redis hiccup: the lock still has most of its TTL; retry soon, and give up only
                # once a whole TTL has passed without a successful renewal (it has expired then).
                logger.warning(
                    "conversation %s lock renewal failed (%s)",
                    self.lock.conversation_id,
                    type(exc).__name__,
                )
                if time.monotonic() - self._last_renewed >= self.lock.ttl_s:
                    metrics.inc(metrics.LOCK_LOST)
                    self.lost.set()
                delay = min(self.interval_s, 1.0)
            else:
                if not still_ours:
                    self.lost.set()
                    break
                self.renewals += 1
                self._last_renewed = time.monotonic()
            await asyncio.sleep(delay)


@contextlib.asynccontextmanager
async def renewed(
    lock: ConversationLock, interval_s: float | None = None
) -> AsyncIterator[LockKeeper]:
    """Keep `lock` alive while the block runs (renewing every ttl/3 by default).

    Does not release the lock on exit: the caller releases it, after its last check for pending
    messages.
    """
    keeper = LockKeeper(lock, interval_s if interval_s is not None else lock.ttl_s / 3)
    # Most turns end long before the first renewal is due: start the renewing task only then
    # (a timer costs a fraction of a task's creation and cancellation).
    loop = asyncio.get_running_loop()
    renewing: list[asyncio.Task] = []

    def start() -> None:
        renewing.append(loop.create_task(keeper.run(), name=f"lock-keeper-{lock.conversation_id}"))

    timer = loop.call_later(keeper.interval_s, start)
    try:
        yield keeper
    finally:
        timer.cancel()
        if renewing:
            renewing[0].cancel()
            # gather, not suppress(CancelledError): a cancellation of the caller must propagate.
            await asyncio.gather(*renewing, return_exceptions=True)
