"""`manage.py sweep_pending [--dry-run]`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from conversations import events
from conversations.models import Message
from tests.engine.test_sweeper import aged, claimed
from tests.fakes.engine import (
    configure,
    inbound,
    new_conversation,
    short_lived_connections,  # noqa: F401 (autouse fixture)
    store,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def woken(monkeypatch):
    sent = []

    def record(conversation_id):
        sent.append(conversation_id)
        return True

    monkeypatch.setattr(events, "send_wake", record)
    return sent


@pytest.fixture
def runtime(db):
    return configure(lock_ttl_seconds=10)


def sweep_pending(*args) -> str:
    out = StringIO()
    call_command("sweep_pending", *args, stdout=out)
    return out.getvalue()


def test_it_wakes_conversations_with_leftovers_and_says_so(runtime, woken):
    stale = new_conversation()
    dead = new_conversation()
    aged(store(stale.pk, "oi"), 30)
    claimed(dead.pk, "primeira", claim_age_s=15)
    output = sweep_pending()
    assert woken == sorted([stale.pk, dead.pk])
    assert f"conversation {stale.pk}: 1 pending" in output
    assert f"conversation {dead.pk}: reset 1 dead claims" in output
    assert "2 conversations to wake" in output
    assert [m.state for m in inbound(dead.pk)] == [Message.State.PENDING]


def test_it_only_reports_on_a_dry_run(runtime, woken):
    dead = new_conversation()
    claimed(dead.pk, "primeira", claim_age_s=15)
    output = sweep_pending("--dry-run")
    assert woken == []
    assert f"conversation {dead.pk}: would reset 1 dead claims" in output
    assert "dry run, nothing changed" in output
    assert [m.state for m in inbound(dead.pk)] == [Message.State.PROCESSING]


def test_it_reports_nothing_to_do(runtime, woken):
    output = sweep_pending()
    assert "0 conversations to wake" in output
    assert woken == []


def test_it_shows_no_personal_data(runtime, woken):
    c = new_conversation()
    aged(store(c.pk, "meu cpf é 529.982.247-25"), 30)
    output = sweep_pending()
    assert "529" not in output
    assert c.customer.wa_id not in output


def test_it_rejects_unknown_options(runtime):
    with pytest.raises(CommandError):
        call_command("sweep_pending", "--everything")


@pytest.mark.live
def test_it_wakes_through_the_real_redis_channel_layer(live_redis_url, runtime):
    from asgiref.sync import async_to_sync
    from channels.layers import channel_layers, get_channel_layer

    channel_layers.backends.pop("default", None)
    c = new_conversation()
    aged(store(c.pk, "oi"), 30)
    output = sweep_pending()
    assert "1 woken" in output

    async def receive():
        layer = get_channel_layer()
        return await layer.receive(events.INBOUND_CHANNEL)

    channel_layers.backends.pop("default", None)
    assert async_to_sync(receive)() == events.wake_event(c.pk)
    channel_layers.backends.pop("default", None)
