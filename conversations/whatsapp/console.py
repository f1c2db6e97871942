"""The console sender's live view: with DEBUG on, every message stored for a customer also shows
in the simulator page (conversations.staff.simulator) through the channel layer."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from conversations.events import simulator_group
from conversations.models import Message
from conversations.threads import calling_loop

logger = logging.getLogger(__name__)

SIMULATOR_EVENT = "simulator.message"
NOTIFY_TIMEOUT_S = 2.0  # the simulator's live view waits no longer than this per message


def simulator_payload(message: Message) -> dict:
    """What the simulator page gets for one message (JSON-safe, ids not instances)."""
    return {
        "id": message.pk,
        "direction": message.direction,
        "type": message.type,
        "text": message.text,
        "kind": message.kind,
        "delivery_status": message.delivery_status,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


def notify_simulator(wa_id: str, message: Message) -> None:
    """Best effort: the simulator page shows the message live; a channel-layer error is ignored."""
    if not settings.DEBUG:
        return  # the simulator exists only with DEBUG on: spare the channel layer a round trip
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        group = simulator_group(wa_id)
        event = {"type": SIMULATOR_EVENT, "message": simulator_payload(message)}
        loop = calling_loop()
        if loop is None:
            async_to_sync(layer.group_send)(group, event)
        else:  # a worker's unit of work: the layer belongs to the loop that awaits us
            asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop).result(
                NOTIFY_TIMEOUT_S
            )
    except Exception as exc:  # never let the live view break a send
        logger.debug("simulator notify failed: %s", type(exc).__name__)
