"""The conversation lock. Tests taking `backend` run twice: on the embedded fakeredis and, in the
live pass (`make live-test`), on the real Redis that django.core.cache points at there."""

import asyncio
import socket
import threading
import time

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from conversations import keys
from conversations.engine import locks
from conversations.engine.locks import ConversationLock, LockKeeper, LockUnavailable, renewed
from tests.fakes.clock import FakeTime


@pytest.fixture(
    params=["fakeredis", pytest.param("redis", marks=pytest.mark.live)],
)
def backend(request):
    if request.param == "redis":
        url = request.getfixturevalue("live_redis_url")
        assert not settings.EMBEDDED, "the live pass must run the cache on the real Redis"
        assert url == settings.REDIS_URL
    return request.param


def raw_token(lock: ConversationLock):
    return get_redis_connection("default").get(cache.make_key(lock.key))


def test_it_builds_the_key_under_the_conversations_prefix():
    assert keys.lock_key(42) == "conversations:lock:42"
    assert ConversationLock(42, ttl_s=10).key == "conversations:lock:42"


def test_it_refuses_a_zero_ttl():
    with pytest.raises(ValueError):
        ConversationLock(1, ttl_s=0)


def test_it_lets_only_one_owner_hold_the_lock(backend):
    first, second = ConversationLock(1, ttl_s=10), ConversationLock(1, ttl_s=10)
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    assert first.owned() and not second.owned()
    assert first.release() is True
    assert second.try_acquire() is True
    assert second.owned()
    second.release()


def test_it_keeps_conversations_independent(backend):
    one, two = ConversationLock(1, ttl_s=10), ConversationLock(2, ttl_s=10)
    assert one.try_acquire() and two.try_acquire()


def test_it_ignores_a_release_by_a_non_owner(backend):
    owner, other = ConversationLock(3, ttl_s=10), ConversationLock(3, ttl_s=10)
    assert owner.try_acquire()
    assert other.release() is False
    assert owner.owned()
    assert other.try_acquire() is False


def test_it_does_not_release_a_lock_that_expired_and_was_taken(backend):
    owner, later = ConversationLock(4, ttl_s=0.2), ConversationLock(4, ttl_s=10)
    assert owner.try_acquire()
    time.sleep(0.35)
    assert later.try_acquire()
    assert owner.release() is False  # compare-and-delete: the later owner's key stays
    assert later.owned()


def test_it_expires_without_renewal(backend):
    owner, other = ConversationLock(5, ttl_s=0.3), ConversationLock(5, ttl_s=10)
    assert owner.try_acquire()
    time.sleep(0.5)
    assert owner.owned() is False
    assert owner.renew() is False
    assert other.try_acquire() is True


def test_it_stays_held_past_its_ttl_while_renewed(backend):
    owner, other = ConversationLock(6, ttl_s=0.4), ConversationLock(6, ttl_s=10)
    assert owner.try_acquire()
    for _ in range(6):  # 1.2 s in all, three TTLs
        time.sleep(0.15)
        assert owner.renew() is True
        assert other.try_acquire() is False
    assert owner.owned()


def test_it_renews_back_to_the_full_ttl(backend):
    owner = ConversationLock(7, ttl_s=10)
    owner.try_acquire()
    connection = get_redis_connection("default")
    connection.pexpire(cache.make_key(owner.key), 500)
    assert owner.renew()
    assert connection.pttl(cache.make_key(owner.key)) > 9000


def test_it_uses_a_new_token_for_each_acquisition(backend):
    lock = ConversationLock(8, ttl_s=10)
    lock.try_acquire()
    first = raw_token(lock)
    lock.release()
    lock.try_acquire()
    assert raw_token(lock) not in (None, first)


def test_it_refuses_to_acquire_twice_without_releasing():
    lock = ConversationLock(9, ttl_s=10)
    lock.try_acquire()
    with pytest.raises(RuntimeError):
        lock.try_acquire()


def test_it_waits_with_backoff_until_the_holder_releases(backend):
    holder, waiter = ConversationLock(10, ttl_s=10), ConversationLock(10, ttl_s=10)
    holder.try_acquire()
    timer = threading.Timer(0.25, holder.release)
    timer.start()
    try:
        assert waiter.acquire(wait_timeout_s=5, base_ms=50, cap_ms=200) is True
    finally:
        timer.cancel()
    assert waiter.attempts > 1
    assert waiter.waited_s > 0.2
    assert waiter.owned()


def test_it_gives_up_waiting_on_the_backoff_schedule(caplog):
    holder, waiter = ConversationLock(11, ttl_s=600), ConversationLock(11, ttl_s=10)
    holder.try_acquire()
    fake = FakeTime()
    acquired = waiter.acquire(
        wait_timeout_s=60, base_ms=100, cap_ms=2000, sleep=fake.sleep, clock=fake.clock
    )
    assert acquired is False
    assert fake.sleeps[:8] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert round(sum(fake.sleeps), 6) == 60.0
    assert "conversation 11 lock: gave up after" in caplog.text
    assert not waiter.owned()


def test_it_reports_an_unreachable_redis(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )

    class DeadCache:
        def lock(self, key, **kwargs):
            return dead.lock(key, **kwargs)

    monkeypatch.setattr(locks, "cache", DeadCache())
    lock = ConversationLock(12, ttl_s=10)
    with pytest.raises(LockUnavailable):
        lock.try_acquire()
    assert lock.release() is False  # nothing held, nothing raised


def test_it_releases_quietly_when_redis_fails_after_acquiring(monkeypatch):
    lock = ConversationLock(13, ttl_s=10)
    lock.try_acquire()

    def broken(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(lock._lock, "release", broken)
    monkeypatch.setattr(lock._lock, "reacquire", broken)
    monkeypatch.setattr(lock._lock, "owned", broken)
    with pytest.raises(LockUnavailable):
        lock.renew()
    with pytest.raises(LockUnavailable):
        lock.owned()
    assert lock.release() is False


async def test_it_keeps_the_lock_through_a_call_longer_than_its_ttl(backend):
    owner, other = ConversationLock(20, ttl_s=0.5), ConversationLock(20, ttl_s=10)
    assert owner.try_acquire()
    async with renewed(owner) as keeper:
        for _ in range(6):  # 1.5 s: three TTLs of "LLM call"
            await asyncio.sleep(0.25)
            assert await asyncio.to_thread(other.try_acquire) is False
        assert not keeper.lost.is_set()
        assert keeper.renewals >= 3
        assert await keeper.confirm() is True
    assert owner.release() is True


async def test_it_stops_renewing_after_the_block(backend):
    owner, other = ConversationLock(21, ttl_s=0.3), ConversationLock(21, ttl_s=10)
    owner.try_acquire()
    async with renewed(owner):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert await asyncio.to_thread(other.try_acquire) is True


async def test_it_signals_lost_when_the_key_is_deleted(backend):
    owner = ConversationLock(22, ttl_s=0.6)
    owner.try_acquire()
    async with renewed(owner) as keeper:
        await asyncio.to_thread(cache.delete, owner.key)
        await asyncio.wait_for(keeper.lost.wait(), timeout=2)
        assert await keeper.confirm() is False
    assert owner.release() is False


async def test_it_signals_lost_when_another_worker_took_the_lock(backend):
    owner, thief = ConversationLock(23, ttl_s=0.6), ConversationLock(23, ttl_s=10)
    owner.try_acquire()
    async with renewed(owner) as keeper:
        await asyncio.to_thread(cache.delete, owner.key)
        assert await asyncio.to_thread(thief.try_acquire)
        await asyncio.wait_for(keeper.lost.wait(), timeout=2)
    assert owner.release() is False
    assert thief.owned()  # the loser's renewals and release never touched the new owner's key


async def test_it_confirms_loss_before_the_next_renewal(backend):
    owner = ConversationLock(24, ttl_s=60)  # renewal every 20 s: only confirm() can notice
    owner.try_acquire()
    async with renewed(owner) as keeper:
        await asyncio.to_thread(cache.delete, owner.key)
        assert not keeper.lost.is_set()
        assert await keeper.confirm() is False
        assert keeper.lost.is_set()


class FlakyLock:
    """Stands in for a ConversationLock while Redis is unreachable."""

    def __init__(self, ttl_s: float):
        self.conversation_id = 99
        self.ttl_s = ttl_s
        self.calls = 0

    def renew(self) -> bool:
        self.calls += 1
        raise LockUnavailable("ConnectionError")


async def test_it_rides_out_a_redis_hiccup_but_gives_up_after_a_whole_ttl(caplog):
    lock = FlakyLock(ttl_s=0.6)
    keeper = LockKeeper(lock, interval_s=0.1)
    task = asyncio.create_task(keeper.run())
    try:
        await asyncio.sleep(0.35)
        assert lock.calls >= 2
        assert not keeper.lost.is_set()  # most of the TTL is left: not lost yet
        await asyncio.wait_for(keeper.lost.wait(), timeout=2)
    finally:
        task.cancel()
    assert "lock renewal failed (LockUnavailable)" in caplog.text
    assert await keeper.confirm() is False


async def test_it_treats_an_unreachable_redis_as_not_ours_when_confirming():
    keeper = LockKeeper(FlakyLock(ttl_s=10), interval_s=5)
    assert await keeper.confirm() is False


async def test_it_propagates_a_cancellation_of_the_turn(backend):
    owner = ConversationLock(25, ttl_s=10)
    owner.try_acquire()

    async def turn():
        async with renewed(owner):
            await asyncio.sleep(10)

    task = asyncio.create_task(turn())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert owner.release() is True
