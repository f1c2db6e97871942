"""`manage.py export_customer NUMBER_OR_DOCUMENT [--output FILE]`."""

import io
import json
import stat

import pytest
from django.core.management import CommandError, call_command

from conversations.models import PrivacyAudit
from tests.fakes.privacy import (  # noqa: F401
    CPF_PUNCTUATED,
    NUMBER,
    OLD_FORM_NUMBER,
    TEXT,
    person,
    personal_data_in,
)


def run(*argv) -> tuple[int, str, str]:
    """The command's exit code (a CommandError's returncode is what manage.py exits with),
    standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("export_customer", *argv, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("query", [OLD_FORM_NUMBER, CPF_PUNCTUATED])
def test_it_writes_the_persons_data_as_json(person, query):
    code, out, _ = run(query)
    assert code == 0
    (exported,) = json.loads(out)["people"]
    assert exported["customer"]["whatsapp_number"] == NUMBER
    assert TEXT in exported["conversations"][0]["messages"][0]["text"]


def test_it_writes_a_file_only_its_owner_may_read_and_audits_it(person, tmp_path):
    target = tmp_path / "maria.json"
    call_command("export_customer", NUMBER, output=str(target), stderr=io.StringIO())
    assert json.loads(target.read_text())["people"][0]["customer"]["whatsapp_number"] == NUMBER
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    entry = PrivacyAudit.objects.get()
    assert (entry.action, entry.customer_id) == ("export", person.customer.pk)
    assert entry.counts == {"customers": 1, "conversations": 1, "messages": 3}
    assert personal_data_in(str(entry.counts) + entry.actor) == []


def test_it_says_so_and_exits_1_for_an_unknown_person(db):
    code, out, err = run("5511912345678")
    assert code == 1
    assert "Nobody with that number or document" in err
    assert out == ""
    assert not PrivacyAudit.objects.exists()


def test_it_exits_1_for_what_is_neither_a_number_nor_a_document(db):
    code, _, err = run("maria")
    assert code == 1
    assert "Not a WhatsApp number" in err


def test_it_does_not_overwrite_an_existing_file(person, tmp_path):
    target = tmp_path / "maria.json"
    target.write_text("mine")
    code, _, err = run(NUMBER, "--output", str(target))
    assert code == 1 and "exists" in err
    assert target.read_text() == "mine"
    assert not PrivacyAudit.objects.exists()


def test_it_exits_1_and_audits_nothing_when_the_file_cannot_be_written(person, tmp_path):
    code, _, err = run(NUMBER, "--output", str(tmp_path / "no-such-folder" / "maria.json"))
    assert code == 1 and "Cannot write" in err
    assert not PrivacyAudit.objects.exists()
