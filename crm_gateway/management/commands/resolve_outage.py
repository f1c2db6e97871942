from django.core.management.base import BaseCommand, CommandError

from crm_gateway import outages
from crm_gateway.models import Outage


class Command(BaseCommand):
    help = "Resolve an outage by id: no more notices for it. Resolving twice is harmless."

    def add_arguments(self, parser):
        parser.add_argument("outage_id", type=int, help="The outage's id (see open_outage).")

    def handle(self, *args, outage_id, **options):
        try:
            outage, resolved = outages.resolve_outage(outage_id)
        except Outage.DoesNotExist:
            raise CommandError(f"No outage with id {outage_id}.") from None
        if resolved:
            self.stdout.write(f"Resolved outage {outage.pk} ({outage.title}).")
        else:
            self.stdout.write(
                f"Outage {outage.pk} was already resolved at {outage.resolved_at.isoformat()}."
            )
