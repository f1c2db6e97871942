"""The dashboard's figures, as plain functions over our own records: the admin's "Painel"
(conversations.staff.dashboard), `manage.py stats` and `/metrics`' gauges all read them here.

Messages and turns are read per hour through conversations.staff.rollups (settled hours kept in
HourlyRollup rows); conversations by their indexed creation and first staff reply times; what is true now
through partial indexes (pending messages, running turns). The staff's percentiles are read with
ORDER BY ... OFFSET, which both PostgreSQL and SQLite run, one row each.
"""

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q
from django.utils import timezone

from conversations import heartbeat
from conversations.models import Conversation, Message, Turn
from conversations.runtime import get_runtime
from conversations.runtime_settings import parse_llm_prices
from conversations.staff import rollups
from crm_gateway import lookup
from crm_gateway.breaker import crm_breaker
from crm_gateway.models import Outage

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
CACHE_HIT_TARGET = 0.80  # the seed's targets
LOCK_TIMEOUT_LIMIT = 0.01
IN, OUT = Message.Direction.INBOUND, Message.Direction.OUTBOUND


def parse_period(text: str) -> timedelta:
    """ "24h", "7d", "30d", or any N followed by h or d (1 hour to 90 days)."""
    text = (text or "").strip().lower()
    if text in PERIODS:
        return PERIODS[text]
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in ("h", "d"):
        raise ValueError(f"a period is a number followed by h or d (e.g. 24h, 7d), not {text!r}")
    span = timedelta(hours=int(number)) if unit == "h" else timedelta(days=int(number))
    if not timedelta(hours=1) <= span <= timedelta(days=90):
        raise ValueError(f"a period lasts from 1h to 90d, not {text!r}")
    return span


def percentile(queryset, expression, fraction: float):
    """The nearest-rank percentile of `expression` over the rows (None when there are none)."""
    rows = queryset.annotate(_value=expression).exclude(_value=None)
    count = rows.count()
    if not count:
        return None
    rank = max(1, math.ceil(fraction * count))
    return rows.order_by("_value").values_list("_value", flat=True)[rank - 1]


def _seconds(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value / 1000  # milliseconds


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Live:
    """What is true now, whatever the period."""

    messages_pending: int
    oldest_pending_seconds: float | None
    waiting_for_staff: int
    turns_in_flight: int
    workers: list[tuple[str, float]]
    breaker: str
    outages: list[dict]


def live(now: datetime | None = None) -> Live:
    now = now or timezone.now()
    pending = Message.objects.filter(direction=IN, state=Message.State.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    try:
        workers = heartbeat.alive(now.timestamp())
    except Exception:  # Redis down: no worker can be seen
        workers = []
    return Live(
        messages_pending=pending["n"],
        oldest_pending_seconds=(now - pending["oldest"]).total_seconds()
        if pending["oldest"]
        else None,
        waiting_for_staff=Conversation.objects.filter(
            handler=Conversation.Handler.HUMAN,
            status=Conversation.Status.OPEN,
            assigned_to__isnull=True,
        ).count(),
        turns_in_flight=Turn.objects.filter(outcome=Turn.Outcome.RUNNING).count(),
        workers=workers,
        breaker=crm_breaker.state(),
        outages=[
            {"id": o.pk, "title": o.title, "regions": o.regions, "started_at": o.started_at}
            for o in Outage.objects.active().order_by("started_at")[:50]
        ],
    )


@dataclass
class Report:
    period: str
    since: datetime
    until: datetime
    messages_in: int = 0
    messages_out: int = 0
    per_hour: list[dict] = field(default_factory=list)  # {"hour", "in", "out"}
    first_reply_p50_s: float | None = None
    first_reply_p95_s: float | None = None
    turn_p95_s: float | None = None
    bot_conversations: int = 0
    resolution_rate: float | None = None
    handoff_rate: float | None = None
    staff_first_response_p50_s: float | None = None
    staff_first_response_p95_s: float | None = None
    turns: int = 0
    lock_waits: int = 0
    lock_wait_p95_s: float | None = None
    lost_locks: int = 0
    lost_lock_rate: float | None = None
    fallbacks: int = 0
    crm_cache: dict = field(default_factory=dict)
    tokens_per_day: list[dict] = field(default_factory=list)  # {"day", "input", ..., "cost_usd"}
    token_cost_usd: float | None = None
    price_model: str = ""
    live: Live | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def build_report(period: str = "24h", now: datetime | None = None) -> Report:
    """The figures of the whole hours from `period` before `now` up to `now`."""
    until = now or timezone.now()
    since = rollups.hour_of(until - parse_period(period))
    report = Report(period=period, since=since, until=until)
    hours = rollups.hourly(since, until)
    _hourly_figures(report, hours)
    _bot_report(report, since, until)
    _staff(report, since, until)
    _tokens(report, hours)
    report.crm_cache = _crm_cache(since, until)
    report.live = live(until)
    return report


def _hourly_figures(report: Report, hours: dict) -> None:
    report.per_hour = [{"hour": hour, "in": r["in"], "out": r["out"]} for hour, r in hours.items()]
    totals = {name: sum(r[name] for r in hours.values()) for name in rollups.COUNTS}
    report.messages_in, report.messages_out = totals["in"], totals["out"]
    report.fallbacks, report.turns = totals["fallbacks"], totals["turns"]
    report.lock_waits, report.lost_locks = totals["lock_waits"], totals["lost_locks"]
    report.lost_lock_rate = _rate(report.lost_locks, report.messages_in)

    def percentile_s(field: str, fraction: float) -> float | None:
        value = rollups.percentile_ms(rollups.merged_histogram(hours.values(), field), fraction)
        return _seconds(value)

    report.first_reply_p50_s = percentile_s("first_reply_ms", 0.50)
    report.first_reply_p95_s = percentile_s("first_reply_ms", 0.95)
    report.turn_p95_s = percentile_s("total_ms", 0.95)
    report.lock_wait_p95_s = percentile_s("lock_wait_ms", 0.95)


def _bot_report(report: Report, since, until) -> None:
    """Chatwoot's bot report: of the conversations started in the period (the bot answers them
    first), the share resolved without a person and the share handed over (both: handed over)."""
    handed = Q(handoff_at__isnull=False) | Q(handler=Conversation.Handler.HUMAN)
    counts = Conversation.objects.filter(created_at__gte=since, created_at__lt=until).aggregate(
        total=Count("id"),
        handed=Count("id", filter=handed),
        resolved=Count("id", filter=Q(status=Conversation.Status.CLOSED) & ~handed),
    )
    report.bot_conversations = counts["total"]
    report.handoff_rate = _rate(counts["handed"], counts["total"])
    report.resolution_rate = _rate(counts["resolved"], counts["total"])


def _staff(report: Report, since, until) -> None:
    answered = Conversation.objects.filter(
        first_staff_reply_at__gte=since, first_staff_reply_at__lt=until, handoff_at__isnull=False
    )
    wait = ExpressionWrapper(F("first_staff_reply_at") - F("handoff_at"), DurationField())
    report.staff_first_response_p50_s = _seconds(percentile(answered, wait, 0.50))
    report.staff_first_response_p95_s = _seconds(percentile(answered, wait, 0.95))


def _tokens(report: Report, hours: dict) -> None:
    runtime = get_runtime()
    prices = parse_llm_prices(runtime.llm_prices)
    report.price_model = runtime.llm_model
    price = prices.get(report.price_model)
    days: dict = {}
    for hour, rollup in hours.items():
        if any(rollup[k] for k in rollups.TOKENS):
            day = days.setdefault(timezone.localtime(hour).date(), dict.fromkeys(rollups.TOKENS, 0))
            for kind in rollups.TOKENS:
                day[kind] += rollup[kind]
    total = 0.0
    for day, tokens in sorted(days.items()):
        cost = None if price is None else cost_usd(tokens, price)
        report.tokens_per_day.append({"day": day, **tokens, "cost_usd": cost})
        total += cost or 0.0
    report.token_cost_usd = None if price is None else total


def cost_usd(tokens: dict, price: tuple[float, float, float]) -> float:
    """Input tokens include the cached ones (the API counts them in input_tokens), which are
    billed at the cached price."""
    uncached = max(0, tokens["input"] - tokens["cached_input"])
    return (
        uncached * price[0] + tokens["cached_input"] * price[1] + tokens["output"] * price[2]
    ) / 1_000_000


def _crm_cache(since, until) -> dict:
    """The CRM cache's hits out of lookups (hits, negative ones included, and misses) counted
    in the period's hours."""
    try:
        hits, lookups = lookup.hit_rate_between(since, until)
    except Exception:  # Redis down
        return {"hits": 0, "lookups": 0, "hit_rate": None, "target": CACHE_HIT_TARGET}
    return {
        "hits": hits,
        "lookups": lookups,
        "hit_rate": _rate(hits, lookups),
        "target": CACHE_HIT_TARGET,
    }
