"""`manage.py purge [--dry-run]`: one retention pass by hand."""

import io
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from conversations.models import Message
from tests.fakes.privacy import person  # noqa: F401


def purge(*args) -> str:
    out = io.StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


def test_it_reports_and_with_dry_run_changes_nothing(person):
    Message.objects.filter(pk=person.voice.pk).update(
        created_at=timezone.now() - timedelta(days=200)
    )
    assert "would erase 1 message(s) and 1 media file(s); dry run" in purge("--dry-run")
    assert not Message.objects.exclude(redacted_at=None).exists()
    assert "erased 1 message(s) and 1 media file(s) in 2 batch(es)" in purge()
    assert Message.objects.exclude(redacted_at=None).get().pk == person.voice.pk
    assert "erased 0 message(s) and 0 media file(s)" in purge()
