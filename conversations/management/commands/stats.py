"""`manage.py stats [--since 24h] [--json]`: the dashboard's figures for a shell."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from conversations.staff import reports


def _fmt(value, unit: str = "", percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


class Command(BaseCommand):
    help = "Print the dashboard's figures (messages, first reply, turns, handoffs, CRM cache, locks, tokens, workers)."

    requires_system_checks = []  # a read-only report; the warnings would bury it

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", default="24h", help="Period up to now: 24h, 7d, 30d, or N h / N d (1h-90d)."
        )
        parser.add_argument("--json", action="store_true", help="One JSON object on stdout.")

    def handle(self, *args, **options):
        try:
            report = reports.build_report(options["since"])
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from None
        if options["json"]:
            data = report.as_dict()
            self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2))
            return
        live = report.live
        cache = report.crm_cache
        rows = [
            ("period", f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M}"),
            ("messages in / out", f"{report.messages_in} / {report.messages_out}"),
            (
                "first reply p50 / p95",
                f"{_fmt(report.first_reply_p50_s, ' s')} / {_fmt(report.first_reply_p95_s, ' s')}",
            ),
            ("turn time p95", f"{_fmt(report.turn_p95_s, ' s')} ({report.turns} turns)"),
            ("bot conversations", report.bot_conversations),
            ("resolution rate", _fmt(report.resolution_rate, percent=True)),
            ("handoff rate", _fmt(report.handoff_rate, percent=True)),
            (
                "staff first response p50 / p95",
                f"{_fmt(report.staff_first_response_p50_s, ' s')} / "
                f"{_fmt(report.staff_first_response_p95_s, ' s')}",
            ),
            (
                "CRM cache hit rate",
                f"{_fmt(cache.get('hit_rate'), percent=True)} "
                f"(target {reports.CACHE_HIT_TARGET:.0%}, {cache['lookups']} lookups)",
            ),
            ("lock waits (p95)", f"{report.lock_waits} ({_fmt(report.lock_wait_p95_s, ' s')})"),
            (
                "lost locks",
                f"{report.lost_locks} ({_fmt(report.lost_lock_rate, percent=True)} "
                f"of inbound; limit {reports.LOCK_TIMEOUT_LIMIT:.0%})",
            ),
            ("fallbacks", report.fallbacks),
            (
                "LLM tokens in / cached / out",
                " / ".join(
                    str(sum(day[k] for day in report.tokens_per_day))
                    for k in ("input", "cached_input", "output")
                ),
            ),
            ("estimated cost", f"{_fmt(report.token_cost_usd)} USD ({report.price_model})"),
            ("pending messages", live.messages_pending),
            ("oldest pending", _fmt(live.oldest_pending_seconds, " s")),
            ("waiting for staff", live.waiting_for_staff),
            ("turns in flight", live.turns_in_flight),
            ("workers alive", f"{len(live.workers)} {', '.join(w for w, _ in live.workers)}"),
            ("CRM breaker", live.breaker),
            ("active outages", len(live.outages)),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"{label.ljust(width)}  {value}")
