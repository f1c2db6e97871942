"""`manage.py erase_customer NUMBER_OR_DOCUMENT [--dry-run] [--yes]`."""

import io

import pytest
from django.core.management import CommandError, call_command

from conversations.models import Customer, Message, PrivacyAudit
from tests.fakes.privacy import CPF, CPF_PUNCTUATED, OLD_FORM_NUMBER, person  # noqa: F401


def erase(*args, answer: str | None = None, monkeypatch=None) -> str:
    if answer is not None:
        monkeypatch.setattr("builtins.input", lambda prompt: answer)
    out = io.StringIO()
    call_command("erase_customer", *args, stdout=out)
    return out.getvalue()


def test_its_dry_run_says_what_it_would_erase_and_changes_nothing(person):
    out = erase(CPF_PUNCTUATED, "--dry-run")
    assert "Would erase 1 customer(s), 1 conversation(s), 3 message(s), 1 media file(s)" in out
    assert "nothing changed" in out
    assert Customer.objects.get().document == CPF
    assert not Message.objects.exclude(redacted_at=None).exists()
    assert not PrivacyAudit.objects.exists()


def test_it_erases_with_yes(person):
    out = erase(OLD_FORM_NUMBER, "--yes")
    assert "Erased 1 customer(s), 1 conversation(s), 3 message(s), 1 media file(s)" in out
    assert Customer.objects.get().document == ""
    assert PrivacyAudit.objects.get().actor == "manage.py erase_customer"


def test_it_asks_and_erases_on_yes(person, monkeypatch):
    erase(CPF, answer="yes", monkeypatch=monkeypatch)
    assert Customer.objects.get().document == ""


def test_it_erases_nothing_unless_confirmed(person, monkeypatch):
    with pytest.raises(CommandError, match="Not confirmed"):
        erase(CPF, answer="n", monkeypatch=monkeypatch)
    assert Customer.objects.get().document == CPF


def test_it_is_idempotent_from_the_command_line(person):
    erase(CPF, "--yes")
    assert "nothing to erase" in erase(CPF, "--yes")
    assert PrivacyAudit.objects.count() == 1


def test_it_refuses_what_is_neither_a_number_nor_a_document(db):
    with pytest.raises(CommandError, match="Not a WhatsApp number"):
        erase("maria", "--yes")
