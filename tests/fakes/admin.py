"""The admin tests' staff, clients and customer history (tests/test_admin*.py)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

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
    new = Conversation.objects.create(
        customer=customer, last_inbound_at=now - timedelta(seconds=20)
    )
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
