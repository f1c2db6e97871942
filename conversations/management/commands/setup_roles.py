from django.core.management.base import BaseCommand

from conversations.roles import setup_roles


class Command(BaseCommand):
    help = (
        'Create or restore the staff groups "Atendimento" and "Supervisão" with their permissions.'
    )

    def handle(self, *args, **options):
        for name, count in setup_roles().items():
            self.stdout.write(f"{name}: {count} permissions")
