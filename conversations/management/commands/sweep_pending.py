"""`manage.py sweep_pending [--dry-run]`: re-wake conversations whose messages were left behind."""

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations import events
from conversations.engine.sweeper import sweep


class Command(BaseCommand):
    help = (
        "Wake conversations with pending inbound messages older than a few seconds, and put "
        "messages claimed by a dead worker (claim older than the lock TTL, lock gone) back in "
        "the queue. --dry-run only reports."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be done; change nothing"
        )

    def handle(self, *args, dry_run=False, **options):
        report = sweep(dry_run=dry_run)
        verb = "would reset" if dry_run else "reset"
        for conversation_id, count in report.stale_pending.items():
            self.stdout.write(f"conversation {conversation_id}: {count} pending")
        for conversation_id, count in report.dead_claims.items():
            self.stdout.write(f"conversation {conversation_id}: {verb} {count} dead claims")
        for conversation_id, count in report.live_claims.items():
            self.stdout.write(
                f"conversation {conversation_id}: {count} old claims, lock held (live turn): left"
            )
        woken = 0
        if not dry_run:
            woken = sum(1 for cid in report.to_wake if events.send_wake(cid))
        if settings.EMBEDDED and report.to_wake and not dry_run:
            # The in-memory channel layer does not cross processes: the server's own sweeper
            # picks these up within half a minute.
            self.stdout.write("embedded mode: the running server's sweeper delivers these wakes")
        self.stdout.write(
            f"{len(report.to_wake)} conversations to wake; "
            + ("dry run, nothing changed" if dry_run else f"{woken} woken")
        )
