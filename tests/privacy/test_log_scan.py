"""The logs of an end-to-end run (signed webhook, a turn with the offline assistant and the demo
CRM, the console sender, an export, an erasure, a late redelivery, a retention pass) and the
audit entries hold none of the test person's CPF, number or text. On SQLite and PostgreSQL."""

import io
import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conversations.engine import turn_loop
from conversations.models import Message, PrivacyAudit
from conversations.privacy.retention import purge
from conversations.threads import in_thread
from tests.fakes import whatsapp_payloads as wa
from tests.fakes.engine import configure, short_lived_connections  # noqa: F401 (fixture)

SECRET = "test-app-secret"
NUMBER = "5511987654321"
OLD_FORM_NUMBER = "551187654321"
CPF = "52998224725"  # the demo CRM knows this one
TEXT = "minha internet caiu aqui na rua das Acácias"
SECRETS = (NUMBER, OLD_FORM_NUMBER, CPF, "529.982.247-25", "rua das Acácias")


def deliver(client, message: dict) -> None:
    body = wa.encode(wa.notification([message]))
    response = client.post(
        "/webhooks/whatsapp/",
        data=body,
        content_type="application/json",
        headers=wa.signed_headers(SECRET, body),
    )
    assert response.status_code == 200


def audit_text() -> str:
    return "\n".join(
        f"{a.action} {a.actor} {a.customer_id} {a.counts}" for a in PrivacyAudit.objects.all()
    )


async def end_to_end(client, caplog, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)
    await in_thread(configure)()
    wamid = wa.new_wamid()
    await in_thread(deliver)(client, wa.text_message(OLD_FORM_NUMBER, TEXT, wamid=wamid))
    await in_thread(deliver)(client, wa.text_message(OLD_FORM_NUMBER, f"meu CPF é {CPF}"))
    conversation_id = await in_thread(
        lambda: Message.objects.values_list("conversation_id", flat=True).first()
    )()
    await turn_loop.run_turns(conversation_id)
    replies = await in_thread(lambda: list(Message.objects.filter(direction="out")))()
    assert replies, "the turn answered"
    out = tmp_path / "export.json"
    await in_thread(call_command)(
        "export_customer", CPF, output=str(out), stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert CPF in out.read_text()  # the export itself holds it, the logs must not
    await in_thread(call_command)("erase_customer", NUMBER, "--yes", stdout=io.StringIO())
    await in_thread(deliver)(client, wa.text_message(OLD_FORM_NUMBER, TEXT, wamid=wamid))
    await in_thread(purge)(now=timezone.now() + timedelta(days=400))
    logs = caplog.text
    assert "console sender: reply to 5511" in logs  # the run was logged, masked
    assert "erased customer" in logs and "redelivery of an erased message ignored" in logs
    leaked = [value for value in SECRETS if value in logs]
    assert leaked == [], f"personal data in the logs: {leaked}"
    audit = await in_thread(audit_text)()
    assert "export" in audit and "erase" in audit
    assert [value for value in SECRETS if value in audit] == []


@pytest.fixture
def whatsapp(settings, tmp_path):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.mark.django_db(transaction=True)
async def test_it_logs_no_personal_data_in_an_end_to_end_run(
    client, caplog, tmp_path, whatsapp, short_lived_connections
):
    await end_to_end(client, caplog, tmp_path)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
async def test_on_postgresql_it_logs_no_personal_data_in_an_end_to_end_run(
    client, caplog, tmp_path, whatsapp, short_lived_connections, live_database_url
):
    await end_to_end(client, caplog, tmp_path)
