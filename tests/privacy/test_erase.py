"""The erasure (conversations.privacy.erase): everything personal gone, figures and dedupe kept,
idempotent, planned without changes, audited without personal data."""

import json

import pytest
from django.core import serializers
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.utils import timezone

from conversations.models import Conversation, Customer, Message, PrivacyAudit, Turn
from conversations.privacy.erase import erase, plan
from conversations.webhook.ingest import store_inbound
from conversations.whatsapp.payloads import InboundMessage
from crm_gateway import keys
from crm_gateway.models import Ticket
from tests.fakes.privacy import CPF, NUMBER, WAMID, person, personal_data_in  # noqa: F401

pytestmark = pytest.mark.django_db


def database_dump() -> str:
    rows = [
        *Customer.objects.all(),
        *Conversation.objects.all(),
        *Message.objects.all(),
        *Turn.objects.all(),
        *PrivacyAudit.objects.all(),
        *Ticket.objects.all(),
    ]
    return serializers.serialize("json", rows)


def test_it_leaves_no_personal_data_in_the_database_the_storage_or_the_cache(person):
    assert personal_data_in(database_dump())  # the fixture holds some
    counts = erase([person.customer], actor="ana")
    assert counts == {
        "customers": 1,
        "conversations": 1,
        "messages": 3,
        "files": 1,
        "documents": 1,
    }
    assert personal_data_in(database_dump()) == []
    assert not default_storage.exists(person.media_name)
    assert cache.get(keys.points_key(CPF)) is None
    assert cache.get(keys.stale_key(CPF)) is None
    assert all(m.redacted_at for m in Message.objects.all())


def test_it_keeps_the_figures_reports_count_on(person):
    erase([person.customer], actor="ana")
    turn = Turn.objects.get()
    assert (turn.batch_size, turn.crm_ms, turn.llm_ms, turn.total_ms) == (2, 120, 900, 1500)
    assert turn.outcome == Turn.Outcome.ANSWERED
    assert Message.objects.filter(turn=turn).count() == 3
    assert Message.objects.filter(direction="out", delivery_status="read").count() == 1
    conversation = Conversation.objects.get()
    assert conversation.handoff_source == Conversation.HandoffSource.TOOL
    assert conversation.handoff_at is not None
    assert conversation.status == Conversation.Status.CLOSED


def test_it_neither_stores_nor_answers_a_late_redelivery_of_an_erased_message(
    person, django_capture_on_commit_callbacks
):
    erase([person.customer], actor="ana")
    late = InboundMessage(wamid=WAMID, wa_id=NUMBER, type="text", text="oi", raw={})
    with django_capture_on_commit_callbacks() as wakes:
        assert store_inbound(late) is None
    assert wakes == []
    assert Message.objects.count() == 3
    assert not Customer.objects.filter(wa_id=NUMBER).exists()  # the number is not back


def test_it_stores_a_new_message_from_the_same_number_as_a_new_customer(person):
    erase([person.customer], actor="ana")
    new = InboundMessage(wamid="wamid.NEW", wa_id=NUMBER, type="text", text="oi", raw={})
    stored = store_inbound(new, wake=False)
    assert stored.conversation.customer.pk != person.customer.pk


def test_it_is_idempotent(person):
    erase([person.customer], actor="ana")
    before = database_dump()
    person.customer.refresh_from_db()
    again = erase([person.customer], actor="ana")
    assert again == {
        "customers": 0,
        "conversations": 0,
        "messages": 0,
        "files": 0,
        "documents": 0,
    }
    dumps = json.loads(database_dump())
    assert [d for d in dumps if d["model"] != "conversations.privacyaudit"] == [
        d for d in json.loads(before) if d["model"] != "conversations.privacyaudit"
    ]


def test_its_plan_counts_what_erase_will_do_and_changes_nothing(person):
    before = database_dump()
    counts = plan([person.customer])
    assert database_dump() == before
    assert default_storage.exists(person.media_name)
    assert cache.get(keys.points_key(CPF)) is not None
    assert counts == erase([person.customer], actor="ana")


def test_it_writes_an_audit_entry_with_who_when_and_counts_only(person):
    before = timezone.now()
    erase([person.customer], actor="ana")
    (entry,) = PrivacyAudit.objects.all()
    assert (entry.action, entry.actor, entry.customer_id) == ("erase", "ana", person.customer.pk)
    assert entry.counts["messages"] == 3 and entry.counts["files"] == 1
    assert before <= entry.at <= timezone.now()
    assert personal_data_in(serializers.serialize("json", [entry])) == []


def test_it_changes_no_row_when_the_storage_fails(person, monkeypatch):
    def broken(name):
        raise PermissionError("read-only storage")

    monkeypatch.setattr(default_storage, "delete", broken)
    with pytest.raises(OSError):
        erase([person.customer], actor="ana")
    assert Message.objects.filter(redacted_at=None).count() == 3
    assert Customer.objects.get().document == CPF
