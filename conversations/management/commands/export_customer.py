"""`manage.py export_customer NUMBER_OR_DOCUMENT [--output FILE]`: everything we hold about one
person, as JSON (LGPD art. 18 II and V)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from conversations.privacy import audit
from conversations.privacy.export import export_counts, export_json
from conversations.privacy.people import NotAPerson, find_customers


class Command(BaseCommand):
    help = (
        "Write everything held about a person (customer, conversations, messages, transcripts, "
        "media files, outage notices, handoffs, tickets) as JSON, found by WhatsApp number "
        "(with or without the ninth digit) or CPF/CNPJ (with or without punctuation)."
    )

    def add_arguments(self, parser):
        parser.add_argument("person", help="WhatsApp number or CPF/CNPJ")
        parser.add_argument("--output", help="write to this file (default: standard output)")

    def handle(self, *args, person, output=None, **options):
        try:
            customers = find_customers(person)
        except NotAPerson as exc:
            raise CommandError(str(exc)) from None
        if not customers:
            raise CommandError("Nobody with that number or document: nothing exported.")
        document = export_json(customers)
        if output:
            target = Path(output)
            if target.exists():
                raise CommandError(f"{output} exists: choose another file; nothing written.")
            try:
                # Only the owner may read it: it is the person's whole history.
                target.touch(mode=0o600, exist_ok=False)
                target.write_text(document + "\n", encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}") from None
        else:
            self.stdout.write(document)
        counts = export_counts(customers)
        for customer in customers:
            audit.record("export", "manage.py export_customer", counts, customer_id=customer.pk)
        if output:
            self.stderr.write(
                f"exported {counts['customers']} customer(s), {counts['conversations']} "
                f"conversation(s), {counts['messages']} message(s) to {output}"
            )
