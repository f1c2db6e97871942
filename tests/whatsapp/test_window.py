"""The 24-hour window (conversations.whatsapp.window): the check, Meta's 131047, the handoff, and
the sender's refused send handing the conversation over."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import events
from conversations.models import Conversation, Customer, Message
from conversations.whatsapp import sender
from conversations.whatsapp.window import (
    OUTSIDE_WINDOW_REASON,
    hand_over_outside_window,
    is_re_engagement_error,
    within_reply_window,
)
from tests.fakes.http import FakeHTTPServer, Reply

pytestmark = pytest.mark.django_db

RE_ENGAGEMENT = Reply(
    400,
    {"error": {"code": 131047, "type": "OAuthException", "message": "Re-engagement message"}},
)


@pytest.fixture
def conversation():
    customer = Customer.objects.create(wa_id="5511987654321", profile_name="Maria")
    return Conversation.objects.create(customer=customer)


@pytest.fixture
def staff_events(monkeypatch):
    sent = []
    monkeypatch.setattr(events, "send_to_staff", sent.append)
    return sent


def test_it_is_open_until_just_before_24_hours_and_closed_from_then_on():
    now = timezone.now()
    assert within_reply_window(now - timedelta(hours=23, minutes=59, seconds=59))
    assert not within_reply_window(now - timedelta(hours=24))
    assert not within_reply_window(now - timedelta(days=2))
    assert not within_reply_window(None)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([{"code": 131047, "title": "Re-engagement message"}], True),
        ([{"code": "131047"}], True),
        (131047, True),
        ([{"code": 131026}], False),
        ([], False),
        (None, False),
        (["junk"], False),
    ],
)
def test_it_recognises_the_re_engagement_error_and_nothing_else(errors, expected):
    assert is_re_engagement_error(errors) is expected


def test_it_hands_a_bot_conversation_to_a_person_with_the_window_reason(
    conversation, staff_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert hand_over_outside_window(conversation.pk)
    conversation.refresh_from_db()
    assert conversation.handler == Conversation.Handler.HUMAN
    assert conversation.handoff_reason == OUTSIDE_WINDOW_REASON == "fora da janela de 24 h"
    assert conversation.handoff_source == Conversation.HandoffSource.WINDOW
    assert timezone.now() - conversation.handoff_at < timedelta(minutes=1)
    assert [(e["event"], e["conversation_id"]) for e in staff_events] == [
        ("handoff", conversation.pk)
    ]


def test_it_leaves_a_conversation_a_person_already_handles_as_it_is(
    conversation, staff_events, django_capture_on_commit_callbacks
):
    Conversation.objects.filter(pk=conversation.pk).update(
        handler=Conversation.Handler.HUMAN, handoff_reason="pediu um atendente"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert not hand_over_outside_window(conversation.pk)
    conversation.refresh_from_db()
    assert conversation.handoff_reason == "pediu um atendente"
    assert staff_events == []


@pytest.fixture
def cloud_answering(settings):
    """Point the sender at a fake Cloud API that gives every send the same answer."""
    servers = []

    def start(reply: Reply) -> None:
        server = FakeHTTPServer(lambda request: reply).start()
        servers.append(server)
        settings.WHATSAPP_ACCESS_TOKEN = "test-access-token"
        settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
        settings.WHATSAPP_API_BASE_URL = server.url + "/v23.0"
        sender.reset_sessions()

    yield start
    for server in servers:
        server.stop()
    sender.reset_sessions()


def test_it_hands_over_when_the_cloud_api_refuses_a_send_with_131047(conversation, cloud_answering):
    cloud_answering(RE_ENGAGEMENT)
    with pytest.raises(sender.SendError) as raised:
        sender.send_text(conversation, "Olá", kind=Message.Kind.REPLY)
    assert raised.value.outside_window
    conversation.refresh_from_db()
    assert conversation.handler == Conversation.Handler.HUMAN
    assert conversation.handoff_reason == OUTSIDE_WINDOW_REASON
    assert conversation.handoff_source == Conversation.HandoffSource.WINDOW
    assert Message.objects.get().delivery_status == Message.Delivery.FAILED


def test_it_does_not_hand_over_for_other_refusals(conversation, cloud_answering):
    cloud_answering(Reply(400, {"error": {"code": 100, "type": "OAuthException"}}))
    with pytest.raises(sender.SendError) as raised:
        sender.send_text(conversation, "Olá", kind=Message.Kind.REPLY)
    assert not raised.value.outside_window
    conversation.refresh_from_db()
    assert conversation.handler == Conversation.Handler.BOT
