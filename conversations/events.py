"""Channel names and event payloads: plain JSON dicts carrying ids, never model instances."""

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
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


async def asend_wake(conversation_id: int) -> bool:
    """Wake the worker for a conversation. Best effort: returns False when the wake was lost."""
    try:
        await get_channel_layer().send(INBOUND_CHANNEL, wake_event(conversation_id))
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
