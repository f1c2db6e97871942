"""Prepare the embedded demo: settings row, a `demo` staff login, and the demo CRM's customers."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from stdnum.br import cnpj, cpf

from conversations.models import CannedReply
from conversations.roles import setup_roles
from conversations.runtime import get_or_create_settings_row
from crm_gateway.demo import DEMO_CUSTOMERS, DEMO_RECORDS

DEMO_USERNAME = "demo"


def format_document(document: str) -> str:
    return cpf.format(document) if len(document) == 11 else cnpj.format(document)


class Command(BaseCommand):
    help = (
        "Embedded mode only: create the runtime settings row, (re)set the `demo` staff "
        "superuser with a new random password (printed), and list the demo CRM's customers. "
        "Safe to run again."
    )

    def handle(self, *args, **options):
        if not settings.EMBEDDED:
            raise CommandError(
                "seed_demo runs only in embedded mode (REDIS_URL unset): it creates a superuser "
                "with a printed password, which has no place on a production database."
            )
        get_or_create_settings_row()
        setup_roles()
        CannedReply.objects.get_or_create(
            shortcut="boleto",
            defaults={"text": "Oi {nome}! A 2ª via do boleto está no app ou no nosso site."},
        )
        password = self._reset_demo_user()

        out = self.stdout
        out.write(self.style.SUCCESS("Demo ready."))
        out.write(
            f"  Admin:     /{settings.ADMIN_URL}  user {DEMO_USERNAME!r}  password {password}"
        )
        out.write(
            f"  Desk:      /{settings.ADMIN_URL}inbox/  (groups Atendimento and Supervisão exist)"
        )
        if settings.DEBUG:
            out.write("  Simulator: /simulator/  (play a WhatsApp customer)")
        else:
            out.write("  Simulator: off (set DJANGO_DEBUG=true to use /simulator/)")
        if settings.CRM_BASE_URL:
            out.write("  CRM_BASE_URL is set: the demo CRM below is not in use.")
        out.write("Demo CRM customers (send one of these documents in the simulator):")
        for document, points in DEMO_CUSTOMERS.items():
            regions = (
                ", ".join(sorted({point["region"] for point in points})) or "no installation points"
            )
            phones = ", ".join(DEMO_RECORDS.get(document, {}).get("phones", []))
            out.write(f"  {format_document(document):<20} {regions:<24} phones on file: {phones}")
        out.write(
            "  The simulator's default number (+55 11 98765-0001) is on file for 529.982.247-25 "
            "only: with it the assistant shows invoices, connection and opens tickets; with the "
            "other documents it only says the document was found and offers a person."
        )

    def _reset_demo_user(self) -> str:
        """A new password every run: the printed one is the only one that works."""
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        return password
