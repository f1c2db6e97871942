from django.core.management.base import BaseCommand, CommandError

from conversations.masking import mask_document
from crm_gateway import keys, lookup
from crm_gateway.breaker import crm_breaker
from crm_gateway.documents import validate


class Command(BaseCommand):
    help = (
        "CRM cache maintenance: `invalidate DOCUMENT` forgets one customer's cached CRM data, "
        "`clear` forgets every customer's (counters and breaker state stay), `stats` prints "
        "hit rate and counts."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        invalidate = sub.add_parser("invalidate", help="Forget one customer's cached CRM data.")
        invalidate.add_argument("document", help="CPF or CNPJ, with or without punctuation.")
        clear = sub.add_parser("clear", help="Forget every customer's cached CRM data.")
        clear.add_argument("--dry-run", action="store_true", help="Count the keys, delete nothing.")
        sub.add_parser("stats", help="Hit rate, counts and circuit breaker state.")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except keys.REDIS_ERRORS as exc:
            raise CommandError(f"Redis is not reachable ({type(exc).__name__}).") from None

    def do_invalidate(self, document, **options):
        checked = validate(document)
        if checked is None:
            raise CommandError("That is not a valid CPF or CNPJ (check digits do not match).")
        deleted = lookup.invalidate(checked[1])
        self.stdout.write(
            f"Invalidated the cached CRM data of {mask_document(checked[1])} ({deleted} key(s))."
        )

    def do_clear(self, dry_run=False, **options):
        if dry_run:
            from django.core.cache import cache

            count = sum(1 for _ in cache.iter_keys(keys.DATA_PATTERN))
            self.stdout.write(f"Would delete {count} cached CRM key(s).")
            return
        self.stdout.write(f"Deleted {lookup.clear()} cached CRM key(s).")

    def do_stats(self, **options):
        stats = lookup.stats()
        self.stdout.write(f"hit rate: {stats['hit_rate'] * 100:.1f}%")
        for name in keys.COUNTERS:
            self.stdout.write(f"{name}: {stats[name]}")
        self.stdout.write(f"circuit breaker: {crm_breaker.state()}")
