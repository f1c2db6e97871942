import uuid

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from conversations import events


def redis_layer(url: str, **config) -> RedisChannelLayer:
    # A prefix of its own: nothing else's channels are touched, and a run starts empty.
    return RedisChannelLayer(
        hosts=[url], prefix=f"supportbot-test-events-{uuid.uuid4().hex}", **config
    )


def test_it_builds_a_json_wake_event():
    assert events.wake_event("7") == {"type": "conversation.wake", "conversation_id": 7}


async def test_it_sends_through_the_layer_when_it_is_not_redis():
    layer = InMemoryChannelLayer()
    await events._send(layer, events.INBOUND_CHANNEL, events.wake_event(3))
    assert await layer.receive(events.INBOUND_CHANNEL) == events.wake_event(3)


@pytest.mark.live
async def test_it_puts_a_wake_where_channels_redis_receive_reads_it_in_order(live_redis_url):
    layer = redis_layer(live_redis_url)
    try:
        for conversation_id in (1, 2):
            await events._send(layer, events.INBOUND_CHANNEL, events.wake_event(conversation_id))
        assert await layer.receive(events.INBOUND_CHANNEL) == events.wake_event(1)
        assert await layer.receive(events.INBOUND_CHANNEL) == events.wake_event(2)
    finally:
        await layer.flush()


@pytest.mark.live
async def test_it_raises_channel_full_at_the_layers_capacity(live_redis_url):
    layer = redis_layer(live_redis_url, capacity=2)
    try:
        await events._send(layer, events.INBOUND_CHANNEL, events.wake_event(1))
        await events._send(layer, events.INBOUND_CHANNEL, events.wake_event(2))
        with pytest.raises(ChannelFull):
            await events._send(layer, events.INBOUND_CHANNEL, events.wake_event(3))
        assert await layer.receive(events.INBOUND_CHANNEL) == events.wake_event(1)
    finally:
        await layer.flush()


@pytest.mark.live
async def test_it_sets_the_layers_expiry_on_the_channel(live_redis_url):
    layer = redis_layer(live_redis_url, expiry=30)
    try:
        await events._send(layer, events.INBOUND_CHANNEL, events.wake_event(1))
        ttl = await layer.connection(0).ttl(layer.prefix + events.INBOUND_CHANNEL)
        assert 0 < ttl <= 30
    finally:
        await layer.flush()
