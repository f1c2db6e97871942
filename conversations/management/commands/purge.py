"""`manage.py purge [--dry-run]`: one retention pass by hand (the workers run it every minute)."""

from django.core.management.base import BaseCommand

from conversations.privacy.retention import purge


class Command(BaseCommand):
    help = (
        "Erase message content older than the runtime setting 'keep message content' and media "
        "files older than 'keep media files', in batches. --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be erased; change nothing"
        )

    def handle(self, *args, dry_run=False, **options):
        report = purge(dry_run=dry_run)
        self.stdout.write(
            f"content older than {report.content_cutoff:%Y-%m-%d %H:%M}, "
            f"media older than {report.media_cutoff:%Y-%m-%d %H:%M}"
        )
        if dry_run:
            self.stdout.write(
                f"would erase {report.messages} message(s) and {report.files} media file(s); "
                "dry run, nothing changed"
            )
            return
        self.stdout.write(
            f"erased {report.messages} message(s) and {report.files} media file(s) "
            f"in {report.batches} batch(es)"
            + ("; more left for the next pass" if report.more else "")
        )
