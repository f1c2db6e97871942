"""Channel names and event payloads: plain JSON dicts carrying ids, never model instances."""

import asyncio
import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from conversations.threads import calling_loop

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


# The staff desk's live updates: every staff page that listens joins this Channels group.
STAFF_GROUP = "supportbot-staff"
STAFF_EVENT = "staff.event"
STAFF_NOTIFY_TIMEOUT_S = 2.0


class StaffEvent(TypedDict):
    type: str  # STAFF_EVENT
    event: str  # what happened: "handoff", "message", "delivery", "assigned", "resolved", ...
    conversation_id: int
    data: dict  # ids and states only, never message text or personal data


def staff_event(event: str, conversation_id: int, **data: int | str | None) -> StaffEvent:
    return {
        "type": STAFF_EVENT,
        "event": event,
        "conversation_id": int(conversation_id),
        "data": data,
    }


def notify_staff_on_commit(event: str, conversation_id: int, **data: int | str | None) -> None:
    """Tell the staff desk once the change has committed. Best effort: a lost event costs only
    liveness, since the desk reads the database again when it reconnects."""
    tell_staff(staff_event(event, conversation_id, **data))


async def anotify_staff(event: str, conversation_id: int, **data: int | str | None) -> None:
    """From the event loop, for what no transaction carries (the assistant's typing state)."""
    await asend_to_staff(staff_event(event, conversation_id, **data))


async def asend_to_staff(payload: StaffEvent) -> None:
    """From the event loop, for changes already committed. Best effort, never raises."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(STAFF_GROUP, payload)
    except Exception as exc:  # liveness only; never fail the caller
        logger.warning("staff event %s not sent (%s)", payload["event"], type(exc).__name__)


def tell_staff(payload: StaffEvent, told: list | None = None) -> None:
    """Send after commit; or, given `told`, add it there for a caller that sends the events from
    its event loop (asend_to_staff) once it has answered (the ASGI webhook)."""
    if told is None:
        transaction.on_commit(lambda: send_to_staff(payload))
    else:
        told.append(payload)


def send_to_staff(payload: StaffEvent) -> bool:
    try:
        layer = get_channel_layer()
        if layer is None:
            return False
        loop = calling_loop()
        if loop is None:
            async_to_sync(layer.group_send)(STAFF_GROUP, payload)
        else:  # a worker's unit of work: the layer belongs to the loop that awaits us
            asyncio.run_coroutine_threadsafe(layer.group_send(STAFF_GROUP, payload), loop).result(
                STAFF_NOTIFY_TIMEOUT_S
            )
    except Exception as exc:  # the desk catches up on reconnect; never fail the caller
        logger.warning("staff event %s not sent (%s)", payload["event"], type(exc).__name__)
        return False
    return True
