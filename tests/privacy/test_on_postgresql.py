"""Export, erase and retention on PostgreSQL: the same checks as the embedded tests (whose
functions run here again), plus concurrent retention passes, which SKIP LOCKED keeps apart."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from conversations.models import Customer, Message
from conversations.privacy import retention
from tests.fakes.privacy import person  # noqa: F401 (fixture)
from tests.privacy import test_erase, test_export, test_retention
from tests.privacy.test_retention import conversation  # noqa: F401 (fixture)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_on_postgresql_erase_leaves_nothing_personal(person, live_database_url):
    test_erase.test_it_leaves_no_personal_data_in_the_database_the_storage_or_the_cache(person)


def test_on_postgresql_erase_keeps_figures(person, live_database_url):
    test_erase.test_it_keeps_the_figures_reports_count_on(person)


def test_on_postgresql_erase_keeps_dedupe(person, live_database_url):
    # Outside a transaction on PostgreSQL ingest takes its one-query path.
    from conversations.webhook.ingest import store_inbound
    from conversations.whatsapp.payloads import InboundMessage
    from tests.fakes.privacy import NUMBER, WAMID

    test_erase.erase([person.customer], actor="ana")
    late = InboundMessage(wamid=WAMID, wa_id=NUMBER, type="text", text="oi", raw={})
    assert store_inbound(late, wake=False) is None
    assert Message.objects.count() == 3
    assert not Customer.objects.filter(wa_id=NUMBER).exists()


def test_on_postgresql_erase_is_idempotent(person, live_database_url):
    test_erase.test_it_is_idempotent(person)


def test_on_postgresql_erase_plan_changes_nothing(person, live_database_url):
    test_erase.test_its_plan_counts_what_erase_will_do_and_changes_nothing(person)


def test_on_postgresql_export_holds_everything(person, live_database_url):
    test_export.test_it_exports_the_customer_conversations_messages_and_everything_else(person)


def test_on_postgresql_retention_erases_at_the_edges(conversation, live_database_url):
    test_retention.test_it_erases_content_older_than_the_setting_and_keeps_the_rest(conversation)


def test_on_postgresql_concurrent_passes_split_the_work(
    conversation, monkeypatch, live_database_url
):
    monkeypatch.setattr(retention, "BATCH_SIZE", 7)
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            direction="in",
            provider_id=f"wamid.C{i}",
            text="antigo",
            state="answered",
        )
        for i in range(120)
    )
    Message.objects.update(created_at=timezone.now() - timedelta(days=365))
    reports = []

    def one_pass():
        try:
            reports.append(retention.purge())
        finally:
            close_old_connections()

    threads = [threading.Thread(target=one_pass) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(report.messages for report in reports) == 120  # each row once
    assert not Message.objects.filter(redacted_at=None).exists()
    assert Message.objects.filter(provider_id=None, wamid_hash__isnull=False).count() == 120
