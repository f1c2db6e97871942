from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from conversations import whatsapp
from conversations.models import Conversation, Customer, Message, Turn

PHONE = "5511987654321"
CPF = "52998224725"


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, is_staff=True)  # no password: force_login
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="conversations", codename__in=codenames)
    )
    return user


VIEW_ALL = ("view_customer", "view_conversation", "view_message", "view_turn")


@pytest.fixture
def viewer_client(client, db):
    """Staff who may read everything but not see full documents."""
    client.force_login(staff("viewer", *VIEW_ALL))
    return client


@pytest.fixture
def trusted_client(client, db):
    client.force_login(staff("trusted", *VIEW_ALL, "view_full_document"))
    return client


@pytest.fixture
def agent_client(client, db):
    """Staff who handle conversations (change permission for the actions)."""
    client.force_login(staff("agent", *VIEW_ALL, "change_conversation"))
    return client


def message(conversation, direction, text, *, at, **fields):
    stored = Message.objects.create(
        conversation=conversation, direction=direction, text=text, **fields
    )
    Message.objects.filter(pk=stored.pk).update(created_at=at)
    return stored


@pytest.fixture
def history(db):
    """Maria: a closed conversation yesterday and an open one today, with a turn."""
    customer = Customer.objects.create(
        wa_id=PHONE, reply_wa_id="551187654321", profile_name="Maria", document=CPF
    )
    now = timezone.now()
    old = Conversation.objects.create(customer=customer, status=Conversation.Status.CLOSED)
    new = Conversation.objects.create(customer=customer)
    turn = Turn.objects.create(
        conversation=new,
        outcome=Turn.Outcome.ANSWERED,
        batch_size=2,
        supersede_count=1,
        lock_wait_ms=3,
        debounce_wait_ms=2004,
        crm_ms=87,
        llm_ms=1534,
        total_ms=3650,
        detail="all good",
    )
    message(old, "in", "primeira mensagem", at=now - timedelta(days=1), state="answered")
    message(
        old, "out", "primeira resposta", at=now - timedelta(days=1, seconds=-5),
        kind="reply", delivery_status="read", provider_id="wamid.o1",
    )  # fmt: skip
    a = message(
        new, "in", "internet caiu", at=now - timedelta(seconds=30), state="answered", turn=turn
    )
    b = message(new, "in", "meu cpf", at=now - timedelta(seconds=20), state="answered", turn=turn)
    reply = message(
        new, "out", "estamos verificando", at=now - timedelta(seconds=10),
        kind="reply", delivery_status="delivered", turn=turn, provider_id="wamid.o2",
    )  # fmt: skip
    return {
        "customer": customer,
        "old": old,
        "new": new,
        "turn": turn,
        "a": a,
        "b": b,
        "reply": reply,
    }


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_customer_list_masks_documents_and_numbers(viewer_client, history):
    html = page(viewer_client, "/admin/conversations/customer/")
    assert "Maria" in html
    assert "***.982.247-**" in html
    assert CPF not in html and "529.982.247-25" not in html
    assert "5511*******21" in html
    assert PHONE not in html


def test_even_a_superuser_sees_masked_documents_in_the_list(admin_client, history):
    html = page(admin_client, "/admin/conversations/customer/")
    assert "***.982.247-**" in html
    assert CPF not in html and PHONE not in html


@pytest.mark.parametrize(
    "term",
    [
        "529.982.247-25",
        "529 982 247 25",
        "52998224725",
        "Maria",
        "+55 (11) 98765-4321",
        "5511 8765-4321",
        "4321",
    ],
)
def test_it_finds_customers_by_document_name_or_number_as_typed(viewer_client, history, term):
    Customer.objects.create(wa_id="5521912345678", profile_name="João")
    response = viewer_client.get("/admin/conversations/customer/", {"q": term})
    customers = list(response.context["cl"].result_list)
    assert customers == [history["customer"]]


def test_a_search_for_nobody_finds_nobody(viewer_client, history):
    response = viewer_client.get("/admin/conversations/customer/", {"q": "111.444.777-35"})
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"document": "yes"}, {"Maria"}),
        ({"document": "no"}, {"João", "Ana"}),
        ({"open": "human"}, {"João"}),
        ({"open": "bot"}, {"Maria"}),
        ({"open": "none"}, {"Ana"}),
    ],
)
def test_it_filters_customers(viewer_client, history, query, expected):
    joao = Customer.objects.create(wa_id="5521912345678", profile_name="João")
    Conversation.objects.create(customer=joao, handler=Conversation.Handler.HUMAN)
    Customer.objects.create(wa_id="5531912345678", profile_name="Ana")
    response = viewer_client.get("/admin/conversations/customer/", query)
    assert {c.profile_name for c in response.context["cl"].result_list} == expected


def test_the_customer_page_shows_the_whole_history_in_time_order(viewer_client, history):
    html = page(viewer_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    texts = [
        "primeira mensagem",
        "primeira resposta",
        "internet caiu",
        "meu cpf",
        "estamos verificando",
    ]
    positions = [html.index(text) for text in texts]
    assert positions == sorted(positions)
    table = html[html.index("customer-history") :]
    for shown in ("Inbound", "Outbound", "Answered", "Read", "Delivered", "Assistant reply"):
        assert shown in table
    assert f"answered by turn #{history['turn'].pk}" in table
    assert f"sent by turn #{history['turn'].pk}" in table
    assert f"/admin/conversations/conversation/{history['old'].pk}/change/" in table
    assert PHONE in html  # staff reply to this number: shown on the customer's own page


def test_the_customer_page_escapes_message_text(viewer_client, history):
    Message.objects.create(conversation=history["new"], direction="in", text="<script>x</script>")
    html = page(viewer_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_full_document_needs_the_permission(viewer_client, history):
    html = page(viewer_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "***.982.247-**" in html
    assert "529.982.247-25" not in html and CPF not in html


def test_staff_with_the_permission_see_the_full_document(trusted_client, history):
    html = page(trusted_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "529.982.247-25" in html


def test_an_alphanumeric_cnpj_is_shown_formatted(trusted_client, history):
    Customer.objects.filter(pk=history["customer"].pk).update(document="12ABC34501DE35")
    html = page(trusted_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "12.ABC.345/01DE-35" in html


def test_customers_cannot_be_added_by_hand(admin_client, db):
    assert admin_client.get("/admin/conversations/customer/add/").status_code == 403


def test_the_customer_list_offers_the_crm_refresh_action(admin_client, history):
    html = page(admin_client, "/admin/conversations/customer/")
    assert 'value="refresh_crm_data"' in html


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
    assert f"#{a.pk}, #{b.pk} → #{reply.pk} (Assistant reply)" in html
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
    assert "1 conversation(s) taken over" in response.content.decode()


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


def test_it_finds_a_mobile_typed_without_its_ninth_digit(viewer_client, history):
    Customer.objects.filter(pk=history["customer"].pk).update(reply_wa_id="")
    response = viewer_client.get("/admin/conversations/customer/", {"q": "55 11 8765-4321"})
    assert list(response.context["cl"].result_list) == [history["customer"]]


def test_the_crm_refresh_action_runs_from_the_customer_list(admin_client, db):
    customer = Customer.objects.create(wa_id=PHONE)  # no document: nothing to ask the CRM
    response = admin_client.post(
        "/admin/conversations/customer/",
        {"action": "refresh_crm_data", "_selected_action": [customer.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]]


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
    assert 'id="staff-reply"' in html and "Send on WhatsApp" in html
    response = reply(agent_client, taken_over)
    assert "Reply sent." in response.content.decode()
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
        ({"handler": "bot"}, "oi", "Take the conversation over first"),
        ({"status": "closed"}, "oi", "closed"),
        ({}, "   ", "Type a reply"),
        ({}, "x" * 4097, "over 4096"),
    ],
    ids=["bot-handles", "closed", "empty", "too-long"],
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
    monkeypatch.setattr(whatsapp, "BACKOFF_FACTOR", 0.001)
    whatsapp.reset_sessions()
    yield
    whatsapp.reset_sessions()


def test_a_failed_staff_reply_is_reported(agent_client, taken_over, settings, fast_sender):
    settings.WHATSAPP_ACCESS_TOKEN, settings.WHATSAPP_PHONE_NUMBER_ID = "token", "123"
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens
    response = reply(agent_client, taken_over)
    assert "Not sent" in response.content.decode()
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
    assert "The bot answers this conversation" in html
    assert "Send on WhatsApp" not in html
