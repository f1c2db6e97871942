from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from crm_gateway import outages


class Command(BaseCommand):
    help = "Open an outage: customers in the regions get its notice once per conversation."

    def add_arguments(self, parser):
        parser.add_argument(
            "--regions", required=True, help='Comma-separated regions, e.g. "Centro,Zona Norte".'
        )
        parser.add_argument("--message", required=True, help="What affected customers are told.")
        parser.add_argument("--title", default="", help="Short title for staff (optional).")
        parser.add_argument(
            "--expected-end",
            default=None,
            help="Expected end, ISO 8601 (e.g. 2026-11-25T20:00-03:00; local time if no offset).",
        )

    def handle(self, *args, regions, message, title, expected_end, **options):
        try:
            outage = outages.open_outage(
                regions=outages.parse_regions(regions),
                message=message,
                title=title,
                expected_end=(
                    outages.parse_expected_end(expected_end) if expected_end is not None else None
                ),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"Opened outage {outage.pk} ({outage.title}) for regions: {', '.join(outage.regions)}"
        )
