"""conversations.staff.admin_conversations: conversations (read-only history, take over, hand back, close, staff
replies) and the message log."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from conversations.models import Conversation, Customer, Message
from conversations.whatsapp import sender
from tests.fakes.admin import (
    PHONE,
    agent_client,  # noqa: F401 (fixture)
    history,  # noqa: F401 (fixture)
    page,
    viewer_client,  # noqa: F401 (fixture)
)


def test_the_conversation_page_shows_messages_and_turns_read_only(admin_client, history):
    html = page(admin_client, f"/admin/conversations/conversation/{history['new'].pk}/change/")
    for text in (
        "internet caiu",
        "meu cpf",
        "estamos verificando",
        "2004",
        "1534",
        "3650",
        "all good",
    ):
        assert text in html
    a, b, reply = history["a"], history["b"], history["reply"]
    assert f"#{a.pk}, #{b.pk} → #{reply.pk} (Resposta do assistente)" in html
    # Not even a superuser gets form fields for history.
    assert 'name="messages-0-text"' not in html
    assert 'name="turns-0-detail"' not in html
    assert 'name="messages-0-DELETE"' not in html


def test_the_conversation_list_masks_numbers(admin_client, db):
    Conversation.objects.create(customer=Customer.objects.create(wa_id=PHONE))
    html = page(admin_client, "/admin/conversations/conversation/")
    assert "5511*******21" in html and PHONE not in html


def run_action(client, action, *conversations):
    return client.post(
        "/admin/conversations/conversation/",
        {"action": action, "_selected_action": [c.pk for c in conversations]},
        follow=True,
    )


def test_staff_take_over_a_conversation(agent_client, history):
    response = run_action(agent_client, "take_over", history["new"])
    assert response.status_code == 200
    history["new"].refresh_from_db()
    assert history["new"].handler == Conversation.Handler.HUMAN
    assert history["new"].handoff_source == Conversation.HandoffSource.STAFF
    assert history["new"].handoff_at is not None
    assert "1 conversa(s) assumida(s)" in response.content.decode()


def test_handing_back_clears_the_handoff_reason(agent_client, history):
    Conversation.objects.filter(pk=history["new"].pk).update(
        handler=Conversation.Handler.HUMAN, handoff_reason="LLM failed: timeout"
    )
    run_action(agent_client, "hand_back", history["new"])
    history["new"].refresh_from_db()
    assert history["new"].handler == Conversation.Handler.BOT
    assert history["new"].handoff_reason == ""


def test_closing_a_conversation_records_when(agent_client, history):
    run_action(agent_client, "close", history["new"])
    history["new"].refresh_from_db()
    assert history["new"].status == Conversation.Status.CLOSED
    assert history["new"].closed_at is not None


def test_actions_leave_closed_conversations_alone(agent_client, history):
    run_action(agent_client, "take_over", history["old"])
    history["old"].refresh_from_db()
    assert history["old"].handler == Conversation.Handler.BOT


def test_staff_without_change_permission_cannot_run_actions(viewer_client, history):
    html = page(viewer_client, "/admin/conversations/conversation/")
    assert 'value="take_over"' not in html
    run_action(viewer_client, "take_over", history["new"])
    history["new"].refresh_from_db()
    assert history["new"].handler == Conversation.Handler.BOT


def test_messages_are_read_only_even_for_superusers(admin_client, history):
    reply = history["reply"]
    url = f"/admin/conversations/message/{reply.pk}/"
    assert admin_client.get("/admin/conversations/message/add/").status_code == 403
    html = page(admin_client, url + "change/")
    assert 'name="text"' not in html
    response = admin_client.post(url + "change/", {"text": "edited", "direction": "out"})
    assert response.status_code == 403
    assert admin_client.post(url + "delete/", {"post": "yes"}).status_code == 403
    reply.refresh_from_db()
    assert reply.text == "estamos verificando"


def test_the_message_list_filters_and_offers_no_bulk_delete(admin_client, history):
    html = page(admin_client, "/admin/conversations/message/")
    assert 'value="delete_selected"' not in html
    response = admin_client.get(
        "/admin/conversations/message/", {"direction__exact": "out", "kind__exact": "reply"}
    )
    assert {m.text for m in response.context["cl"].result_list} == {
        "primeira resposta",
        "estamos verificando",
    }
    response = admin_client.get("/admin/conversations/message/", {"state__exact": "answered"})
    assert len(response.context["cl"].result_list) == 3
    response = admin_client.get("/admin/conversations/message/", {"delivery_status__exact": "read"})
    assert [m.text for m in response.context["cl"].result_list] == ["primeira resposta"]
    assert PHONE not in html


def reply(client, conversation, text="Oi Maria, aqui é a Ana do suporte."):
    return client.post(
        f"/admin/conversations/conversation/{conversation.pk}/reply/", {"text": text}, follow=True
    )


@pytest.fixture
def taken_over(history, settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""  # console sender
    Conversation.objects.filter(pk=history["new"].pk).update(handler=Conversation.Handler.HUMAN)
    history["new"].refresh_from_db()
    return history["new"]


def test_staff_reply_to_a_conversation_they_took_over(agent_client, taken_over):
    html = page(agent_client, f"/admin/conversations/conversation/{taken_over.pk}/change/")
    assert 'id="staff-reply"' in html and "Enviar no WhatsApp" in html
    response = reply(agent_client, taken_over)
    assert "Resposta enviada." in response.content.decode()
    sent = Message.objects.get(kind=Message.Kind.STAFF)
    assert sent.conversation == taken_over
    assert sent.direction == Message.Direction.OUTBOUND
    assert sent.delivery_status == Message.Delivery.SENT
    assert sent.text == "Oi Maria, aqui é a Ana do suporte."
    entry = LogEntry.objects.get(object_id=str(taken_over.pk))
    assert entry.user.username == "agent"
    assert f"message #{sent.pk}" in entry.get_change_message()


@pytest.mark.parametrize(
    "change,text,problem",
    [
        ({"handler": "bot"}, "oi", "Assuma a conversa primeiro"),
        ({"status": "closed"}, "oi", "closed"),
        ({}, "   ", "Digite uma resposta"),
        ({}, "x" * 4097, "mais de 4096"),
        ({"last_inbound_at": timezone.now() - timedelta(hours=25)}, "oi", "mais de 24 horas"),
        ({"last_inbound_at": None}, "oi", "mais de 24 horas"),
    ],
    ids=["bot-handles", "closed", "empty", "too-long", "window-closed", "never-wrote"],
)
def test_a_staff_reply_is_refused_when_it_should_not_go_out(
    agent_client, taken_over, change, text, problem
):
    Conversation.objects.filter(pk=taken_over.pk).update(**change)
    response = reply(agent_client, taken_over, text)
    assert problem in response.content.decode()
    assert not Message.objects.filter(kind=Message.Kind.STAFF).exists()


@pytest.fixture
def fast_sender(monkeypatch):
    monkeypatch.setattr(sender, "BACKOFF_FACTOR", 0.001)
    sender.reset_sessions()
    yield
    sender.reset_sessions()


def test_a_failed_staff_reply_is_reported(agent_client, taken_over, settings, fast_sender):
    settings.WHATSAPP_ACCESS_TOKEN, settings.WHATSAPP_PHONE_NUMBER_ID = "token", "123"
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens
    response = reply(agent_client, taken_over)
    assert "Não enviada" in response.content.decode()
    assert Message.objects.get(kind=Message.Kind.STAFF).delivery_status == "failed"


def test_staff_without_change_permission_cannot_reply(viewer_client, taken_over):
    html = page(viewer_client, f"/admin/conversations/conversation/{taken_over.pk}/change/")
    assert 'id="staff-reply"' not in html
    assert reply(viewer_client, taken_over).status_code == 403
    assert not Message.objects.filter(kind=Message.Kind.STAFF).exists()


def test_the_reply_endpoint_only_takes_posts(agent_client, taken_over):
    url = f"/admin/conversations/conversation/{taken_over.pk}/reply/"
    assert agent_client.get(url).status_code == 405


def test_the_page_explains_how_to_reply_while_the_bot_answers(agent_client, history):
    html = page(agent_client, f"/admin/conversations/conversation/{history['new'].pk}/change/")
    assert "O assistente responde esta conversa" in html
    assert "Enviar no WhatsApp" not in html


def test_the_conversation_page_shows_tool_calls_tokens_and_who_asked_for_the_handoff(
    admin_client, history
):
    conversation = history["new"]
    turn = conversation.turns.first()
    turn.tool_calls = [
        {"name": "get_connection_status", "ok": True, "ms": 120},
        {"name": "open_ticket", "ok": False, "ms": 45},
    ]
    turn.input_tokens, turn.cached_input_tokens, turn.output_tokens = 2400, 1024, 80
    turn.save()
    Conversation.objects.filter(pk=conversation.pk).update(
        handler=Conversation.Handler.HUMAN,
        handoff_source=Conversation.HandoffSource.TOOL,
        handoff_at=timezone.now(),
    )
    html = page(admin_client, f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert "get_connection_status ok (120 ms); open_ticket error (45 ms)" in html
    assert "2400 / 1024 / 80" in html
    assert "O assistente (transfer_to_human)" in html
    assert html.count("O assistente (transfer_to_human)") == 1  # each field shown once
