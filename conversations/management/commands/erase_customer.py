"""`manage.py erase_customer NUMBER_OR_DOCUMENT [--dry-run] [--yes]`: erase a person's data
(LGPD art. 18 IV and VI), keeping anonymous figures."""

from django.core.management.base import BaseCommand, CommandError

from conversations.privacy.erase import erase, plan
from conversations.privacy.people import NotAPerson, find_customers


def _summary(counts: dict) -> str:
    return (
        f"{counts['customers']} customer(s), {counts['conversations']} conversation(s), "
        f"{counts['messages']} message(s), {counts['files']} media file(s), "
        f"CRM cache of {counts['documents']} document(s)"
    )


class Command(BaseCommand):
    help = (
        "Erase a person's message texts, raw payloads, transcripts, media files, name, number "
        "and document, and the CRM cache for their documents; turns and counts stay. Found by "
        "WhatsApp number or CPF/CNPJ. Asks for confirmation unless --yes; --dry-run only reports."
    )

    def add_arguments(self, parser):
        parser.add_argument("person", help="WhatsApp number or CPF/CNPJ")
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be erased; change nothing"
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, person, dry_run=False, yes=False, **options):
        try:
            customers = find_customers(person)
        except NotAPerson as exc:
            raise CommandError(str(exc)) from None
        if not customers:
            self.stdout.write("Nobody with that number or document: nothing to erase.")
            return
        counts = plan(customers)
        if dry_run:
            self.stdout.write(f"Would erase {_summary(counts)}. Dry run: nothing changed.")
            return
        if not yes:
            answer = input(f"Erase {_summary(counts)}? This cannot be undone. Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Not confirmed: nothing erased.")
        done = erase(customers, actor="manage.py erase_customer")
        self.stdout.write(f"Erased {_summary(done)}.")
