"""The dashboard's figures per hour, computed once for every settled hour and kept in the
database (HourlyRollup), so a Redis restart or flush costs the dashboard nothing.

A period of 30 days is 720 hours; reading 720 small rollups (one query) and computing only the
hours not settled yet (the current one and the one before) is what keeps the dashboard under a
second on a million messages, where aggregating the raw rows took several (BENCHMARKS.md).

An hour is settled once it ended SETTLE_AFTER ago: its messages' creation times never change,
and its turns have finished by then (a turn outlives neither its lock nor the sweeper). Each
rollup holds counts, token sums and histograms of the turn times over BUCKETS_MS, from which the
percentiles are read as a bucket's upper bound. Rollups older than KEEP_FOR are deleted by the
warming pass, so records removed later (retention) leave the figures within that time.
"""

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.functions import TruncHour

from conversations.models import HourlyRollup, Message, Turn

SETTLE_AFTER = timedelta(minutes=10)
KEEP_FOR = timedelta(days=35)
HOUR = timedelta(hours=1)
WARM_SPAN = timedelta(days=30)  # the dashboard's longest period
# Upper bounds of the histogram buckets, in milliseconds; above the last: OVERFLOW.
BUCKETS_MS = (
    10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000, 7500, 10_000,
    15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000,
)  # fmt: skip
OVERFLOW = len(BUCKETS_MS)
TIMINGS = ("first_reply_ms", "total_ms", "lock_wait_ms")
COUNTS = ("in", "out", "fallbacks", "turns", "lock_waits", "lost_locks")
TOKENS = ("input", "cached_input", "output")


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def empty() -> dict:
    return {
        **dict.fromkeys(COUNTS, 0),
        **dict.fromkeys(TOKENS, 0),
        **{name: {} for name in TIMINGS},
    }


def _bucket(field: str) -> Case:
    whens = [When(**{f"{field}__lte": bound}, then=Value(i)) for i, bound in enumerate(BUCKETS_MS)]
    return Case(*whens, default=Value(OVERFLOW), output_field=IntegerField())


def compute(start: datetime, end: datetime) -> dict[datetime, dict]:
    """The rollups of every hour in [start, end), from the records (a few grouped queries)."""
    hours = {}
    cursor = start
    while cursor < end:
        hours[cursor] = empty()
        cursor += HOUR
    messages = Message.objects.filter(created_at__gte=start, created_at__lt=end)
    rows = (
        messages.annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "direction")
        .annotate(n=Count("id"), fallbacks=Count("id", filter=Q(kind=Message.Kind.FALLBACK)))
        .order_by()
    )
    for row in rows:
        rollup = hours[hour_of(row["hour"])]
        rollup[row["direction"]] += row["n"]
        rollup["fallbacks"] += row["fallbacks"]
    turns = Turn.objects.filter(started_at__gte=start, started_at__lt=end).exclude(
        outcome=Turn.Outcome.RUNNING
    )
    by_hour = turns.annotate(hour=TruncHour("started_at", tzinfo=UTC))
    rows = (
        by_hour.values("hour")
        .annotate(
            turns=Count("id"),
            lock_waits=Count("id", filter=Q(lock_wait_ms__gt=0)),
            lost_locks=Count("id", filter=Q(outcome=Turn.Outcome.LOST_LOCK)),
            input=Sum("input_tokens"),
            cached_input=Sum("cached_input_tokens"),
            output=Sum("output_tokens"),
        )
        .order_by()
    )
    for row in rows:
        rollup = hours[hour_of(row["hour"])]
        for name in ("turns", "lock_waits", "lost_locks", *TOKENS):
            rollup[name] += row[name] or 0
    for field in TIMINGS:
        timed = by_hour.exclude(**{f"{field}__isnull": True})
        if field == "lock_wait_ms":
            timed = timed.filter(lock_wait_ms__gt=0)
        rows = timed.values("hour").annotate(bucket=_bucket(field), n=Count("id")).order_by()
        for row in rows:
            histogram = hours[hour_of(row["hour"])][field]
            histogram[str(row["bucket"])] = histogram.get(str(row["bucket"]), 0) + row["n"]
    return hours


def hourly(since: datetime, until: datetime) -> dict[datetime, dict]:
    """The rollup of every hour from since's to until's: settled ones from the database
    (computed and stored when missing), the others computed now."""
    first, last = hour_of(since), hour_of(until)
    hours = []
    cursor = first
    while cursor <= last:
        hours.append(cursor)
        cursor += HOUR
    settled = [hour for hour in hours if hour + HOUR + SETTLE_AFTER <= until]
    result = dict(HourlyRollup.objects.filter(hour__in=settled).values_list("hour", "figures"))
    missing = [hour for hour in settled if hour not in result]
    if missing:
        computed = compute(missing[0], missing[-1] + HOUR)
        fresh = {hour: computed[hour] for hour in missing}
        result.update(fresh)
        # Another process may store the same hours meanwhile: the figures are the same.
        HourlyRollup.objects.bulk_create(
            [HourlyRollup(hour=h, figures=r) for h, r in fresh.items()], ignore_conflicts=True
        )
    unsettled = [hour for hour in hours if hour not in result]
    if unsettled:
        result.update(compute(unsettled[0], unsettled[-1] + HOUR))
    return {hour: result[hour] for hour in hours}


def merged_histogram(rollups, field: str) -> Counter:
    total = Counter()
    for rollup in rollups:
        total.update({int(bucket): n for bucket, n in rollup[field].items()})
    return total


def percentile_ms(histogram: Counter, fraction: float) -> int | None:
    """The nearest-rank percentile as its bucket's upper bound (None: no values)."""
    count = sum(histogram.values())
    if not count:
        return None
    rank = max(1, math.ceil(round(fraction * count, 9)))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return BUCKETS_MS[min(bucket, OVERFLOW - 1)]
    return None


def warm(now: datetime | None = None) -> int:
    """Store the rollups of the longest period's settled hours that are missing (the workers
    call it every few minutes, so no supervisor waits for a cold dashboard). Returns the number
    of hours read or computed."""
    from django.utils import timezone

    now = now or timezone.now()
    HourlyRollup.objects.filter(hour__lt=now - KEEP_FOR).delete()
    return len(hourly(now - WARM_SPAN, now))
