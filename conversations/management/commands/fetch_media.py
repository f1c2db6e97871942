"""`manage.py fetch_media [--dry-run] [--limit N]`: fetch again the voice notes and photos whose
download failed (or that no turn fetched), and transcribe the voice notes, apart from message
dedupe: a redelivered webhook stores nothing new, so it cannot bring them back."""

import asyncio

from django.core.management.base import BaseCommand

from conversations.engine.media_step import TurnMedia, media_to_fetch_again, prepare_media
from conversations.models import Message
from conversations.runtime import get_runtime


class Command(BaseCommand):
    help = (
        "Download again the customers' voice notes and photos whose download failed or never "
        "ran, store them and transcribe the voice notes. --dry-run only lists them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be fetched; change nothing"
        )
        parser.add_argument(
            "--limit", type=int, default=100, help="at most this many messages (default 100)"
        )

    def handle(self, *args, dry_run=False, limit=100, **options):
        messages = media_to_fetch_again(max(1, limit))
        for message in messages:
            self.stdout.write(
                f"message {message.pk} ({message.type}, conversation {message.conversation_id}):"
                f" {message.media_status or 'no media'}, {message.media_attempts} attempts"
            )
        if dry_run or not messages:
            self.stdout.write(
                f"{len(messages)} to fetch; dry run, nothing changed"
                if dry_run
                else "nothing to fetch"
            )
            return
        asyncio.run(prepare_media(messages, get_runtime(), TurnMedia()))
        stored = Message.objects.filter(
            pk__in=[m.pk for m in messages], media_status=Message.MediaStatus.STORED
        ).count()
        self.stdout.write(f"{stored} of {len(messages)} stored")
