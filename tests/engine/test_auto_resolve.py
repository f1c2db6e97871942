"""conversations.engine.auto_resolve, in the worker's periodic pass: quiet conversations are
resolved; those waiting for a person are skipped unless the setting says otherwise; a queued
message keeps its conversation open; the next message starts a new conversation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.engine import sweeper
from conversations.engine.auto_resolve import auto_resolve
from conversations.models import Conversation, Message
from tests.fakes.desk import member, open_conversation, said, waiting
from tests.fakes.engine import configure

pytestmark = pytest.mark.django_db


def quiet_for(conversation, hours: float) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now() - timedelta(hours=hours)
    )


def status(conversation) -> str:
    return Conversation.objects.get(pk=conversation.pk).status


def test_it_resolves_a_conversation_quiet_for_the_set_hours_and_no_other():
    configure(auto_resolve_hours=24)
    quiet = open_conversation("5511911110001")
    recent = open_conversation("5511911110002")
    quiet_for(quiet, 25)
    quiet_for(recent, 23)
    assert auto_resolve() == [quiet.pk]
    assert status(quiet) == "closed" and status(recent) == "open"
    resolved = Conversation.objects.get(pk=quiet.pk)
    assert resolved.closed_at is not None and resolved.closed_by is None


def test_it_follows_the_runtime_setting():
    configure(auto_resolve_hours=2)
    conversation = open_conversation("5511911110001")
    quiet_for(conversation, 3)
    assert auto_resolve() == [conversation.pk]


def test_it_skips_a_conversation_waiting_for_a_person_by_default():
    configure(auto_resolve_hours=1)
    left_waiting = waiting("5511911110001", 300)
    assigned = waiting("5511911110002", 300, assigned_to=member("ana", "Atendimento"))
    quiet_for(left_waiting, 5)
    quiet_for(assigned, 5)
    assert auto_resolve() == [assigned.pk]
    assert status(left_waiting) == "open"


def test_it_resolves_waiting_conversations_too_when_set():
    configure(auto_resolve_hours=1, auto_resolve_waiting=True)
    left_waiting = waiting("5511911110001", 300)
    quiet_for(left_waiting, 5)
    assert auto_resolve() == [left_waiting.pk]


def test_it_leaves_a_conversation_with_a_message_still_queued_for_the_assistant():
    configure(auto_resolve_hours=1)
    conversation = open_conversation("5511911110001")
    said(conversation, "oi", state=Message.State.PENDING)
    quiet_for(conversation, 5)
    assert auto_resolve() == []


def test_a_dry_run_changes_nothing():
    configure(auto_resolve_hours=1)
    conversation = open_conversation("5511911110001")
    quiet_for(conversation, 5)
    assert auto_resolve(dry_run=True) == [conversation.pk]
    assert status(conversation) == "open"


@pytest.mark.django_db(transaction=True)
async def test_the_workers_periodic_pass_runs_it(monkeypatch):
    from conversations.threads import in_thread

    def prepare():
        configure(auto_resolve_hours=1)
        conversation = open_conversation("5511911110001")
        quiet_for(conversation, 5)
        return conversation

    conversation = await in_thread(prepare)()
    report = await sweeper.sweep_once()
    assert report.auto_resolved == [conversation.pk]


def test_the_next_message_after_a_resolution_starts_a_new_conversation_with_the_assistant():
    from conversations.webhook.ingest import ingest_notification
    from conversations.whatsapp.payloads import parse_notification
    from tests.fakes.whatsapp_payloads import notification, text_message

    configure(auto_resolve_hours=1)
    first = waiting("5511911110001", 300, assigned_to=member("ana", "Atendimento"))
    quiet_for(first, 5)
    auto_resolve()
    body = notification([text_message("5511911110001", "voltei", wamid="wamid.back")])
    ingest_notification(parse_notification(body), wake=False)
    (second,) = Conversation.objects.filter(customer=first.customer, status="open")
    assert second.pk != first.pk
    assert second.handler == Conversation.Handler.BOT
