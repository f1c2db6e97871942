"""`manage.py stats`: the dashboard's figures on stdout, as text or JSON."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from conversations import heartbeat
from conversations.models import Conversation, Customer, Message, Turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def records():
    customer = Customer.objects.create(wa_id="5511900000001")
    conversation = Conversation.objects.create(customer=customer)
    Message.objects.create(conversation=conversation, direction="in", state="pending")
    Message.objects.create(conversation=conversation, direction="out", kind="fallback")
    Turn.objects.create(conversation=conversation, outcome="fallback", total_ms=750)
    heartbeat.beat("host-a:7")


def run(*args) -> str:
    out = StringIO()
    call_command("stats", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_figures_as_text(records):
    text = run()
    assert "messages in / out               1 / 1" in text
    assert "turn time p95                   0.75 s (1 turns)" in text
    assert "fallbacks                       1" in text
    assert "workers alive                   1 host-a:7" in text
    assert "pending messages                1" in text


def test_it_prints_one_json_object(records):
    data = json.loads(run("--since", "7d", "--json"))
    assert data["period"] == "7d"
    assert (data["messages_in"], data["messages_out"], data["fallbacks"]) == (1, 1, 1)
    assert data["turn_p95_s"] == 0.75
    assert data["live"]["messages_pending"] == 1
    assert data["live"]["workers"][0][0] == "host-a:7"


@pytest.mark.parametrize("since", ["yesterday", "0h", "365d"])
def test_it_refuses_a_bad_period(since):
    with pytest.raises(CommandError, match="--since"):
        run("--since", since)
