"""The retention pass (conversations.privacy.retention): content and media past their days are
erased in bounded batches, at the edges exactly, and nothing else."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from conversations.models import Conversation, Customer, Message, PrivacyAudit, Turn
from conversations.privacy import retention
from conversations.privacy.fields import wamid_hash
from conversations.privacy.retention import purge
from conversations.runtime import reset_runtime_cache
from conversations.webhook.ingest import store_inbound
from conversations.whatsapp.payloads import InboundMessage
from tests.fakes.engine import configure

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def fresh_runtime():
    """A test that saves other retention days must not leave them to the next one."""
    yield
    reset_runtime_cache()


@pytest.fixture
def conversation(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    customer = Customer.objects.create(wa_id="5511987654321", profile_name="Maria")
    return Conversation.objects.create(customer=customer)


def message(conversation, age: timedelta, *, media: bool = False, **fields) -> Message:
    stored = Message(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        provider_id=f"wamid.R{Message.objects.count()}",
        text="minha internet caiu",
        transcript="oi" if media else "",
        raw={"text": {"body": "minha internet caiu"}},
        state=Message.State.ANSWERED,
        **fields,
    )
    if media:
        stored.media_file.save("foto.jpg", ContentFile(b"\xff\xd8 jpeg"), save=False)
    stored.save()
    Message.objects.filter(pk=stored.pk).update(created_at=NOW - age)
    stored.refresh_from_db()
    return stored


def test_it_erases_content_older_than_the_setting_and_keeps_the_rest(conversation):
    old = message(conversation, timedelta(days=180, seconds=1))
    kept = message(conversation, timedelta(days=180) - timedelta(seconds=1))
    report = purge(now=NOW)
    assert report.messages == 1
    old.refresh_from_db()
    kept.refresh_from_db()
    assert (old.text, old.raw, old.transcript) == ("", {}, "")
    assert old.redacted_at is not None
    assert (old.provider_id, old.wamid_hash) == (None, wamid_hash("wamid.R0"))
    assert old.state == Message.State.ANSWERED  # its figures stay
    assert (kept.text, kept.redacted_at) == ("minha internet caiu", None)


def test_it_deletes_media_files_older_than_their_setting_and_keeps_the_text(conversation):
    old = message(conversation, timedelta(days=30, seconds=1), media=True)
    young = message(conversation, timedelta(days=29, hours=23), media=True)
    old_name, young_name = old.media_file.name, young.media_file.name
    report = purge(now=NOW)
    assert (report.files, report.messages) == (1, 0)
    old.refresh_from_db()
    assert old.media_file.name == "" and not default_storage.exists(old_name)
    assert old.text == "minha internet caiu"  # content stays for 180 days
    assert default_storage.exists(young_name)


def test_it_follows_the_runtime_settings(conversation):
    configure(content_retention_days=7, media_retention_days=1)
    message(conversation, timedelta(days=8))
    message(conversation, timedelta(days=6), media=True)
    message(conversation, timedelta(hours=23), media=True)
    report = purge(now=NOW)
    assert (report.messages, report.files) == (1, 1)


def test_it_works_in_bounded_batches_and_says_when_more_is_left(conversation, monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    monkeypatch.setattr(retention, "MAX_BATCHES_PER_PASS", 2)
    for _ in range(5):
        message(conversation, timedelta(days=200))
    first = purge(now=NOW)
    assert (first.messages, first.batches, first.more) == (4, 2, True)
    second = purge(now=NOW)
    assert (second.messages, second.more) == (1, False)
    assert purge(now=NOW).messages == 0  # nothing is done twice


def test_its_dry_run_counts_and_changes_nothing(conversation):
    old = message(conversation, timedelta(days=181), media=True)
    report = purge(dry_run=True, now=NOW)
    assert (report.messages, report.files) == (1, 1)
    old.refresh_from_db()
    assert old.text and old.media_file.name and default_storage.exists(old.media_file.name)
    assert not PrivacyAudit.objects.exists()


def test_it_keeps_conversations_turns_and_counts(conversation):
    turn = Turn.objects.create(conversation=conversation, batch_size=1, llm_ms=700)
    message(conversation, timedelta(days=400), turn=turn)
    purge(now=NOW)
    assert Conversation.objects.count() == 1
    assert Turn.objects.get().llm_ms == 700
    assert Message.objects.filter(turn=turn).count() == 1


def test_it_keeps_dedupe_for_messages_past_retention(conversation):
    message(conversation, timedelta(days=181))
    purge(now=NOW)
    late = InboundMessage(wamid="wamid.R0", wa_id="5511987654321", type="text", text="x", raw={})
    assert store_inbound(late, wake=False) is None
    assert Message.objects.count() == 1


def test_it_writes_an_audit_entry_of_counts_when_it_erased_something(conversation):
    purge(now=NOW)
    assert not PrivacyAudit.objects.exists()
    message(conversation, timedelta(days=181), media=True)
    purge(now=NOW)
    (entry,) = PrivacyAudit.objects.all()
    assert (entry.action, entry.counts) == ("purge", {"messages": 1, "files": 1})
