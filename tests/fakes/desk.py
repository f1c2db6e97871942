"""The staff desk tests' conversations in each desk state, and staff in each role."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from conversations.models import Conversation, Customer, Message
from conversations.roles import setup_roles

HUMAN, BOT = Conversation.Handler.HUMAN, Conversation.Handler.BOT


def member(username: str, *groups: str, **fields) -> User:
    setup_roles()  # a transactional test's flush removed the migration's groups
    fields.setdefault("is_staff", True)
    user = User.objects.create_user(username, **fields)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def open_conversation(number: str, name: str = "", document: str = "", **fields) -> Conversation:
    customer = Customer.objects.create(wa_id=number, profile_name=name, document=document)
    fields.setdefault("last_inbound_at", timezone.now() - timedelta(minutes=5))
    return Conversation.objects.create(customer=customer, **fields)


def waiting(number: str, minutes_ago: int, name: str = "", **fields) -> Conversation:
    return open_conversation(
        number,
        name,
        handler=HUMAN,
        handoff_at=timezone.now() - timedelta(minutes=minutes_ago),
        handoff_source=Conversation.HandoffSource.TOOL,
        **fields,
    )


def said(conversation: Conversation, text: str, **fields) -> Message:
    return Message.objects.create(
        conversation=conversation, direction=Message.Direction.INBOUND, text=text, **fields
    )


@pytest.fixture
def agent(db):
    return member("ana", "Atendimento")


@pytest.fixture
def supervisor(db):
    return member("sueli", "Supervisão")


@pytest.fixture
def outsider(db):
    """Staff without any desk permission."""
    return member("otto")


@pytest.fixture
def console_sender(settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""  # the console sender: stores and logs, sends nothing
    return settings
