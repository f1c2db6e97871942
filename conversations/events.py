"""Channel names and event payloads: plain JSON dicts carrying ids, never model instances."""

import logging
import time
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# The worker channel (`manage.py runworker supportbot-inbound`).
INBOUND_CHANNEL = "supportbot-inbound"
WAKE_EVENT = "conversation.wake"
# Errors that lose a wake; the database still holds the message and the sweeper re-wakes it.
SEND_ERRORS = (ChannelFull, RedisError, OSError)


class WakeEvent(TypedDict):
    type: str  # WAKE_EVENT
    conversation_id: int


def wake_event(conversation_id: int) -> WakeEvent:
    return {"type": WAKE_EVENT, "conversation_id": int(conversation_id)}


# channels-redis's send() is four round trips (ZREMRANGEBYSCORE, ZCOUNT, ZADD, EXPIRE), paid for
# every stored message; this script does the same on the same sorted set in one, atomically.
_REDIS_SEND = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


async def _send(layer, channel: str, message: dict) -> None:
    """layer.send(channel, message), in one Redis round trip on channels-redis (whose receive()
    reads it: same key, serializer, capacity and expiry). Raises ChannelFull like send()."""
    # One Redis server (our settings): several would be used round robin by send(); leave it that.
    if type(layer) is not RedisChannelLayer or layer.ring_size != 1 or "!" in channel:
        await layer.send(channel, message)
        return
    now = time.time()
    expiry = int(layer.expiry)
    added = await layer.connection(0).eval(
        _REDIS_SEND,
        1,
        layer.prefix + channel,
        int(now) - expiry,
        layer.get_capacity(channel),
        now,
        layer.serialize(message),
        expiry,
    )
    if not added:
        raise ChannelFull()


async def asend_wake(conversation_id: int) -> bool:
    """Wake the worker for a conversation. Best effort: returns False when the wake was lost."""
    try:
        await _send(get_channel_layer(), INBOUND_CHANNEL, wake_event(conversation_id))
    except SEND_ERRORS as exc:
        logger.warning(
            "wake for conversation %s not sent (%s); the sweeper will pick it up",
            conversation_id,
            type(exc).__name__,
        )
        return False
    return True


def send_wake(conversation_id: int) -> bool:
    return async_to_sync(asend_wake)(conversation_id)


def wake_on_commit(conversation_id: int) -> None:
    """Wake the worker once the transaction that stored the message has committed."""
    transaction.on_commit(lambda: send_wake(conversation_id))


def simulator_group(wa_id: str) -> str:
    """Channels group where the simulator page listens for one customer's messages."""
    return f"supportbot-simulator-{wa_id}"
