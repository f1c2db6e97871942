"""conversations.staff.reports against a hand-built day whose figures are worked out by hand in
the comments."""

from datetime import UTC, datetime, timedelta

import pytest

from conversations import heartbeat
from conversations.models import (
    Conversation,
    Customer,
    HourlyRollup,
    Message,
    RuntimeSettings,
    Turn,
)
from conversations.runtime import reset_runtime_cache
from conversations.staff import reports
from crm_gateway import lookup
from crm_gateway.models import Outage

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo: one local day back to 00h


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def conversation(n: int, hours_ago: float = 6, **fields) -> Conversation:
    customer = Customer.objects.create(wa_id=f"5511900000{n:03d}")
    made = Conversation.objects.create(customer=customer, **fields)
    Conversation.objects.filter(pk=made.pk).update(created_at=at(hours_ago))
    return made


def turn(conv, hours_ago, *, outcome=Turn.Outcome.ANSWERED, **fields) -> Turn:
    made = Turn.objects.create(conversation=conv, outcome=outcome, **fields)
    Turn.objects.filter(pk=made.pk).update(started_at=at(hours_ago))
    return made


def message(conv, hours_ago, direction, kind="", state="") -> Message:
    made = Message.objects.create(conversation=conv, direction=direction, kind=kind, state=state)
    Message.objects.filter(pk=made.pk).update(created_at=at(hours_ago))
    return made


@pytest.fixture
def day():
    RuntimeSettings.objects.create()  # default prices: gpt-5-mini 0.25 / 0.025 / 2.00 USD
    reset_runtime_cache()
    closed, human = Conversation.Status.CLOSED, Conversation.Handler.HUMAN
    resolved = conversation(1, status=closed, closed_at=at(1))
    waiting = conversation(
        2, handler=human, handoff_at=at(3), first_staff_reply_at=at(3) + timedelta(seconds=60)
    )
    handed_and_closed = conversation(
        3,
        handler=human,
        status=closed,
        handoff_at=at(5),
        first_staff_reply_at=at(5) + timedelta(seconds=180),
    )
    open_bot = conversation(4)
    old = conversation(5, 30, status=closed)
    # Times fall on the rollups' bucket bounds, so the percentiles are exact.
    # Finished turns in the last 24 h: total_ms 100, 200, 300, 500, 5000 -> p95 (rank 5 of 5)
    # 5.0 s. first_reply_ms 1000, 2000, 3000, 4000 (one None) -> p50 rank 2 = 2.0 s, p95 rank
    # 4 = 4.0 s. Lock waits 50 and 200 ms -> 2 waits, p95 rank 2 = 0.2 s. One lost lock.
    turn(resolved, 2, total_ms=100, first_reply_ms=1000)
    turn(waiting, 4, total_ms=200, first_reply_ms=2000, lock_wait_ms=50)
    turn(handed_and_closed, 6, total_ms=300, first_reply_ms=3000)
    turn(open_bot, 3, total_ms=500, outcome=Turn.Outcome.LOST_LOCK, lock_wait_ms=200)
    turn(
        open_bot,
        1,
        total_ms=5000,
        first_reply_ms=4000,
        input_tokens=2_000_000,
        cached_input_tokens=1_000_000,
        output_tokens=500_000,
    )
    turn(open_bot, 0.1, outcome=Turn.Outcome.RUNNING)  # in flight: not a finished turn
    turn(old, 30, total_ms=90_000, first_reply_ms=90_000)  # before the period
    # Messages: 4 in (3 at 2 h ago, 1 pending at 1 h ago), 3 out (2 replies, 1 fallback).
    for _ in range(3):
        message(resolved, 2, Message.Direction.INBOUND, state=Message.State.ANSWERED)
    message(open_bot, 1, Message.Direction.INBOUND, state=Message.State.PENDING)
    message(resolved, 1.5, Message.Direction.OUTBOUND, kind=Message.Kind.REPLY)
    message(open_bot, 0.9, Message.Direction.OUTBOUND, kind=Message.Kind.REPLY)
    message(open_bot, 0.5, Message.Direction.OUTBOUND, kind=Message.Kind.FALLBACK)
    message(old, 30, Message.Direction.INBOUND, state=Message.State.ANSWERED)
    Outage.objects.create(title="OLT-3", message="Fibra", regions=["Zona Norte"])
    return {"pending_at": at(1)}


def test_it_counts_messages_in_and_out_per_hour(day):
    report = reports.build_report("24h", now=NOW)
    assert (report.messages_in, report.messages_out) == (4, 3)
    # 13h: 3 in, the reply at 13:30; 14h: the pending one, the replies at 14:06 and 14:30.
    rows = [(row["in"], row["out"]) for row in report.per_hour]
    assert len(rows) == 25  # every hour from 15h yesterday to the current one, empty or not
    assert [row for row in rows if row != (0, 0)] == [(3, 1), (1, 2)]


def test_it_computes_first_reply_and_turn_percentiles(day):
    report = reports.build_report("24h", now=NOW)
    assert report.turns == 5
    assert report.first_reply_p50_s == 2.0
    assert report.first_reply_p95_s == 4.0
    assert report.turn_p95_s == 5.0


def test_it_computes_the_bot_report_as_chatwoot_does(day):
    # Started in the period (the bot answers first): conversations 1-4. Resolved by the bot: 1.
    # Handed over: 2 and 3 (3 was also closed: it counts as handed over).
    report = reports.build_report("24h", now=NOW)
    assert report.bot_conversations == 4
    assert report.resolution_rate == 0.25
    assert report.handoff_rate == 0.5


def test_it_computes_the_staff_first_response(day):
    report = reports.build_report("24h", now=NOW)
    assert report.staff_first_response_p50_s == 60.0
    assert report.staff_first_response_p95_s == 180.0


def test_it_counts_lock_waits_lost_locks_and_fallbacks(day):
    report = reports.build_report("24h", now=NOW)
    assert report.lock_waits == 2
    assert report.lock_wait_p95_s == 0.2
    assert report.lost_locks == 1
    assert report.lost_lock_rate == 0.25  # 1 of 4 inbound messages, against the 1% line
    assert report.fallbacks == 1


def test_it_prices_the_tokens_per_day(day):
    # 1M uncached input x 0.25 + 1M cached x 0.025 + 0.5M output x 2.00 = 1.275 USD.
    report = reports.build_report("24h", now=NOW)
    assert [(d["input"], d["cached_input"], d["output"]) for d in report.tokens_per_day] == [
        (2_000_000, 1_000_000, 500_000)
    ]
    assert report.token_cost_usd == pytest.approx(1.275)
    assert report.price_model == "gpt-5-mini"


def test_it_has_no_cost_for_a_model_without_a_price(day):
    RuntimeSettings.objects.update(llm_prices="other-model 1 1 1")
    reset_runtime_cache()
    report = reports.build_report("24h", now=NOW)
    assert report.token_cost_usd is None


def test_the_longer_periods_take_in_older_records(day):
    report = reports.build_report("7d", now=NOW)
    assert report.messages_in == 5
    assert report.turns == 6
    assert report.turn_p95_s == 90.0
    assert report.bot_conversations == 5
    assert report.resolution_rate == 0.4  # conversations 1 and 5


def test_it_shows_what_is_true_now(day):
    heartbeat.beat("host-a:1", now=NOW.timestamp() - 2)
    live = reports.live(NOW)
    assert live.messages_pending == 1
    assert live.oldest_pending_seconds == 3600.0
    assert live.waiting_for_staff == 1  # conversation 2 (3 is closed)
    assert live.turns_in_flight == 1
    assert live.workers == [("host-a:1", 2.0)]
    assert live.breaker == "closed"
    assert [o["title"] for o in live.outages] == ["OLT-3"]


def test_it_reads_the_crm_cache_hit_rate_of_the_period_against_the_target():
    for _ in range(4):
        lookup.counters.count("hits")
    lookup.counters.count("misses")
    report = reports.build_report("24h")
    assert (report.crm_cache["hits"], report.crm_cache["lookups"]) == (4, 5)
    assert report.crm_cache["hit_rate"] == 0.8
    assert report.crm_cache["target"] == 0.8
    # Counted now: not in a period that ended before.
    assert reports.build_report("24h", now=NOW).crm_cache["lookups"] == 0


def test_an_empty_period_has_no_rates():
    report = reports.build_report("24h", now=NOW)
    assert report.messages_in == 0
    assert report.first_reply_p50_s is None
    assert report.resolution_rate is None
    assert report.lost_lock_rate is None


@pytest.mark.parametrize("period", ["", "24", "h", "0h", "91d", "12w", "-1d", "1.5h"])
def test_it_rejects_a_bad_period(period):
    with pytest.raises(ValueError, match="period"):
        reports.parse_period(period)


@pytest.mark.parametrize(("period", "hours"), [("24h", 24), ("7d", 168), ("2h", 2), ("90d", 2160)])
def test_it_accepts_a_period(period, hours):
    assert reports.parse_period(period) == timedelta(hours=hours)


def test_settled_hours_are_read_back_from_their_rollups(day):
    reports.build_report("24h", now=NOW)
    Message.objects.all().delete()
    # 13h (3 in) was settled and kept; 14h ended less than 10 minutes ago and is recounted.
    assert reports.build_report("24h", now=NOW).messages_in == 3


def test_the_hours_not_settled_yet_are_computed_every_time(day):
    just_after = at(1) + timedelta(minutes=65)  # 15:05: 14h is not settled (10 minutes)
    assert reports.build_report("24h", now=just_after).messages_out == 3
    Message.objects.filter(kind=Message.Kind.FALLBACK).delete()  # in the 14h hour
    assert reports.build_report("24h", now=just_after).messages_out == 2


def test_warming_stores_the_settled_hours_of_the_longest_period(day):
    assert reports.rollups.warm(NOW) == 30 * 24 + 1
    stored = HourlyRollup.objects.get(hour=reports.rollups.hour_of(at(2)))
    assert stored.figures["in"] == 3


def test_the_rollups_outlive_a_redis_flush(day):
    from django.core.cache import cache

    reports.build_report("24h", now=NOW)
    cache.clear()  # a Redis restart
    Message.objects.all().delete()
    assert reports.build_report("24h", now=NOW).messages_in == 3  # read back, not recounted


def test_warming_forgets_rollups_older_than_it_keeps(day):
    old = reports.rollups.hour_of(NOW - reports.rollups.KEEP_FOR - timedelta(hours=2))
    HourlyRollup.objects.create(hour=old, figures=reports.rollups.empty())
    reports.rollups.warm(NOW)
    assert not HourlyRollup.objects.filter(hour=old).exists()
