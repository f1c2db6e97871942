import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError

from conversations import events


def test_it_builds_a_json_wake_event():
    assert events.wake_event("7") == {"type": "conversation.wake", "conversation_id": 7}


async def test_it_wakes_the_inbound_channel():
    assert await events.asend_wake(3) is True
    assert await get_channel_layer().receive(events.INBOUND_CHANNEL) == events.wake_event(3)


@pytest.mark.parametrize("error", [ChannelFull(), RedisConnectionError("down"), OSError("reset")])
async def test_it_reports_a_lost_wake_without_raising(monkeypatch, caplog, error):
    async def fail(channel, message):
        raise error

    monkeypatch.setattr(get_channel_layer(), "send", fail)
    assert await events.asend_wake(5) is False
    assert "sweeper will pick it up" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_it_wakes_only_after_the_transaction_commits(monkeypatch):
    woken = []
    monkeypatch.setattr(events, "send_wake", woken.append)
    with transaction.atomic():
        events.wake_on_commit(9)
        assert woken == []
    assert woken == [9]


@pytest.mark.django_db(transaction=True)
def test_it_never_wakes_for_a_rolled_back_transaction(monkeypatch):
    woken = []
    monkeypatch.setattr(events, "send_wake", woken.append)
    with pytest.raises(RuntimeError), transaction.atomic():
        events.wake_on_commit(9)
        raise RuntimeError("store failed")
    assert woken == []


def test_it_names_a_simulator_group_per_customer():
    assert events.simulator_group("5511987654321") == "supportbot-simulator-5511987654321"


@pytest.mark.django_db(transaction=True)
def test_it_tells_the_staff_group_only_after_commit(monkeypatch):
    layer = get_channel_layer()
    async_to_sync(layer.group_add)(events.STAFF_GROUP, "desk-test")
    sent = []
    real_send = events.send_to_staff
    monkeypatch.setattr(events, "send_to_staff", lambda payload: sent.append(real_send(payload)))
    with transaction.atomic():
        events.notify_staff_on_commit("handoff", 4, reason="tool")
        assert sent == []
    assert sent == [True]
    assert async_to_sync(layer.receive)("desk-test") == {
        "type": "staff.event",
        "event": "handoff",
        "conversation_id": 4,
        "data": {"reason": "tool"},
    }


@pytest.mark.django_db(transaction=True)
def test_it_tells_the_staff_nothing_for_a_rolled_back_transaction(monkeypatch):
    sent = []
    monkeypatch.setattr(events, "send_to_staff", sent.append)
    with pytest.raises(RuntimeError), transaction.atomic():
        events.notify_staff_on_commit("resolved", 4)
        raise RuntimeError("failed")
    assert sent == []


def test_a_lost_staff_event_never_raises(monkeypatch, caplog):
    async def fail(group, message):
        raise RedisConnectionError("down")

    monkeypatch.setattr(get_channel_layer(), "group_send", fail)
    assert events.send_to_staff(events.staff_event("handoff", 1)) is False
    assert "staff event handoff not sent" in caplog.text


@pytest.mark.live
async def test_it_wakes_through_the_configured_redis_layer(live_redis_url):
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    try:
        assert await events.asend_wake(11) is True
        assert await events.asend_wake(12) is True
        assert await layer.receive(events.INBOUND_CHANNEL) == events.wake_event(11)
        assert await layer.receive(events.INBOUND_CHANNEL) == events.wake_event(12)
    finally:
        await layer.flush()
