"""The soak's invariants, checked from the rows and the fakes' logs once every process drained
(bench/soak.py prints them; tests/e2e/test_soak.py asserts them).

    report = check(result)      # result: tests.fakes.soak_run.SoakResult
    print(report.text())
    report.ok                   # False if any invariant failed
"""

import statistics
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise

from conversations.models import Message, Turn
from tests.fakes.soak_checks_kinds import check_handoffs, check_voice_notes

# Texts that would mean a customer saw the platform's concurrency: the seed's apology and kin.
CONCURRENCY_TEXTS = ("desculpe, estou processando", "mensagem anterior", "aguarde um momento")
ENDED = {Message.State.ANSWERED, Message.State.FAILED, Message.State.SKIPPED}
REPLY_KINDS = {Message.Kind.REPLY, Message.Kind.FALLBACK}
# A batch's one answer: a reply, or the handoff message of a turn that called transfer_to_human
# (its batch ends answered, the customer told a person will answer).
BATCH_ANSWERS = REPLY_KINDS | {Message.Kind.HANDOFF}
# crm_gateway.redis_health goes without Redis (straight to the CRM) for 5 s after a failure.
DIRECT_CRM_WINDOW_S = 5.0 + 2.0
# A CRM answer reaches the cache moments after the fake sends it.
IN_FLIGHT_MARGIN_S = 0.5


@dataclass
class Invariant:
    name: str
    ok: bool
    detail: str


@dataclass
class SoakReport:
    invariants: list[Invariant] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(invariant.ok for invariant in self.invariants)

    def hold(self, name: str, ok: bool, detail: str = "") -> None:
        self.invariants.append(Invariant(name, bool(ok), detail))

    def figure(self, name: str, value) -> None:
        self.figures.append((name, str(value)))

    def failures(self) -> list[Invariant]:
        return [invariant for invariant in self.invariants if not invariant.ok]

    def text(self) -> str:
        lines = [f"{name}: {value}" for name, value in self.figures]
        for invariant in self.invariants:
            mark = "ok  " if invariant.ok else "FAIL"
            lines.append(
                f"[{mark}] {invariant.name}" + (f": {invariant.detail}" if invariant.detail else "")
            )
        lines.append("ALL INVARIANTS HOLD" if self.ok else "INVARIANTS FAILED")
        return "\n".join(lines)


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.2f} s, p95 {cuts[94]:.2f} s, p99 {cuts[98]:.2f} s (n={len(values)})"


def _ended_at(message: Message, turns: dict[int, Turn]) -> datetime:
    turn = turns.get(message.turn_id)
    return turn.finished_at if turn is not None and turn.finished_at else message.updated_at


def check_messages(report: SoakReport, result, inbound, turns) -> None:
    report.figure("inbound messages stored", len(inbound))
    report.hold(
        "every delivery was accepted by a web process",
        not result.deliveries.given_up,
        f"{len(result.deliveries.given_up)} given up",
    )
    stored = {message.provider_id for message in inbound}
    missing = result.planned_wamids - stored
    report.hold("every message sent was stored", not missing, f"{len(missing)} missing")
    report.hold("stored once per wamid", len(stored) == len(inbound), f"{len(inbound)} rows")
    states = Counter(message.state for message in inbound)
    report.figure("inbound states", dict(sorted(states.items())))
    unended = [message.pk for message in inbound if message.state not in ENDED]
    report.hold("every inbound message ended", not unended, f"{len(unended)} pending or claimed")
    reasonless = [m.pk for m in inbound if m.state == Message.State.FAILED and not m.failure_reason]
    report.hold("every hand-off has its reason", not reasonless, f"{len(reasonless)} without")
    handoffs = Counter(m.failure_reason for m in inbound if m.state == Message.State.FAILED)
    report.figure("handed to a person, by reason", dict(handoffs.most_common(5)))


def check_replies(report: SoakReport, result, inbound, outbound, turns) -> None:
    replies = [message for message in outbound if message.kind in BATCH_ANSWERS]
    sent = [message for message in replies if message.provider_id]
    per_turn = Counter(message.turn_id for message in sent)
    recorded_twice = sum(count - 1 for count in per_turn.values() if count > 1)
    recorded = {message.provider_id for message in outbound if message.provider_id}
    orphans = Counter(text.to for text in result.cloud_texts if text.wamid not in recorded)
    # The crash window: a reply queued (committed before the call) by a turn whose worker died,
    # never recorded as sent, and WhatsApp has a text for that customer that no row claims.
    traces = Counter(
        message.conversation.customer.wa_id
        for message in replies
        if not message.provider_id
        and getattr(turns.get(message.turn_id), "outcome", None) == Turn.Outcome.LOST_LOCK
    )
    crash_window = sum(min(count, traces[to]) for to, count in orphans.items())
    unexplained = sum(orphans.values()) - crash_window
    report.figure("texts accepted by the Cloud API", len(result.cloud_texts))
    report.figure(
        "replies sent",
        f"{len(sent)} ({sum(m.kind == Message.Kind.FALLBACK for m in sent)} fallback, "
        f"{sum(m.kind == Message.Kind.HANDOFF for m in sent)} handoff messages)",
    )
    report.figure("duplicates from the documented crash window", crash_window)
    report.hold(
        "at most one reply per batch (other duplicates)",
        recorded_twice + unexplained == 0,
        f"{recorded_twice} recorded twice, {unexplained} sent without a trace",
    )
    answered = {m.turn_id for m in inbound if m.state == Message.State.ANSWERED}
    unanswered = answered - set(per_turn)
    report.hold(
        "every answered batch got its reply",
        not unanswered,
        f"{len(unanswered)} turns answered without a reply sent",
    )
    apologies = [
        t for t in result.cloud_texts if any(s in t.body.lower() for s in CONCURRENCY_TEXTS)
    ]
    report.hold(
        "the seed's apology and other concurrency texts sent 0 times",
        not apologies,
        f"{len(apologies)} sent",
    )


SWEPT = "worker gone"  # the start of the detail the sweeper writes on a dead worker's turn


def _real_end(turn: Turn, kills: list[datetime]) -> datetime | None:
    """When the turn stopped running. The sweeper closes a dead worker's turn when it takes the
    claims back, later than the death: such a turn ended at the last worker kill in its span."""
    if turn.finished_at is None or not turn.detail.startswith(SWEPT):
        return turn.finished_at
    in_span = [kill for kill in kills if turn.started_at <= kill <= turn.finished_at]
    return max(in_span) if in_span else turn.finished_at


def check_turns(report: SoakReport, result, turns: dict[int, Turn]) -> None:
    kills = [_when(f.at) for f in result.faults if f.name.startswith("kill -9 worker")]
    by_conversation = defaultdict(list)
    for turn in turns.values():
        by_conversation[turn.conversation_id].append(turn)
    overlaps, unfinished = [], []
    for conversation_turns in by_conversation.values():
        conversation_turns.sort(key=lambda turn: (turn.started_at, turn.pk))
        for earlier, later in pairwise(conversation_turns):
            end = _real_end(earlier, kills)
            if end is None or end > later.started_at:
                overlaps.append(
                    f"turn {earlier.pk} ({earlier.outcome}, {earlier.detail[:60]!r}, "
                    f"{_offset(result, earlier.started_at)}-{_offset(result, earlier.finished_at)})"
                    f" and turn {later.pk} ({later.outcome}, from "
                    f"{_offset(result, later.started_at)})"
                )
        unfinished += [turn.pk for turn in conversation_turns if turn.finished_at is None]
    report.figure("turns", dict(sorted(Counter(t.outcome for t in turns.values()).items())))
    report.hold("no two turns of one conversation overlapped", not overlaps, "; ".join(overlaps))
    report.hold("every turn finished", not unfinished, f"{unfinished[:5]}")


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _offset(result, moment: datetime | None) -> str:
    return "?" if moment is None else f"+{moment.timestamp() - result.started:.1f} s"


def check_latency(report: SoakReport, inbound, outbound, turns) -> None:
    sent_by_conversation = defaultdict(list)
    for message in outbound:
        if message.sent_at and message.kind in REPLY_KINDS:
            sent_by_conversation[message.conversation_id].append(message.sent_at)
    for times in sent_by_conversation.values():
        times.sort()
    latencies = []
    for message in inbound:
        times = sent_by_conversation[message.conversation_id]
        index = bisect_left(times, message.created_at)
        if message.state == Message.State.ANSWERED and index < len(times):
            latencies.append((times[index] - message.created_at).total_seconds())
    report.figure("first-reply latency", percentiles(latencies))


def check_recovery(report: SoakReport, result, inbound, turns) -> None:
    """After each fault, the time until the oldest message pending at that moment ended."""
    for fault in result.faults:
        at = _when(fault.at) if inbound else None
        waiting = [m for m in inbound if at and m.created_at <= at and _ended_at(m, turns) > at]
        if not waiting:
            report.figure(f"recovery after {fault.name}", "nothing was pending")
            continue
        oldest = min(waiting, key=lambda message: message.created_at)
        last = max(_ended_at(message, turns) for message in waiting)
        report.figure(
            f"recovery after {fault.name} (+{fault.at - result.started:.0f} s)",
            f"oldest pending ended after {(_ended_at(oldest, turns) - at).total_seconds():.1f} s, "
            f"all {len(waiting)} pending after {(last - at).total_seconds():.1f} s",
        )


def check_crm(report: SoakReport, result) -> None:
    """Answered CRM calls per document within the cache TTL, apart from the seconds the gateway
    goes without Redis (straight to the CRM) after a Redis restart, and from calls in flight
    when a worker was killed (the answer may have died with the worker, uncached)."""
    restarts = [f for f in result.faults if f.name.startswith("redis")]
    direct = [(f.at - 1, (f.ended or f.at) + DIRECT_CRM_WINDOW_S) for f in restarts]
    kills = [f.at for f in result.faults if f.name.startswith("kill -9 worker")]
    calls = defaultdict(list)
    direct_calls = lost_calls = 0
    for call in result.crm_calls:
        if call.mode != "ok":
            continue
        if any(call.at <= kill <= call.answered + IN_FLIGHT_MARGIN_S for kill in kills):
            lost_calls += 1  # maybe its worker died before caching the answer: asked again
            continue
        if any(start <= call.at <= end for start, end in direct):
            direct_calls += 1
            continue
        epoch = sum(call.at > start for start, _ in direct)  # a restart empties the cache
        calls[(call.document, epoch)].append(call.at)
    worst, worst_times = 0, []
    for times in calls.values():
        times.sort()
        for index, first in enumerate(times):
            within = bisect_left(times, first + result.crm_cache_ttl_s) - index
            if within > worst:
                worst, worst_times = within, times[index : index + within]
    modes = Counter(call.mode for call in result.crm_calls)
    report.figure(
        "CRM calls",
        f"{dict(modes)}; {direct_calls} while Redis was away (direct), "
        f"{lost_calls} in flight when a worker was killed",
    )
    report.figure("documents looked up", len({document for document, _ in calls}))
    at = ", ".join(f"+{moment - result.started:.1f} s" for moment in worst_times)
    report.hold(
        "CRM calls per document within the cache TTL <= 1", worst <= 1, f"max {worst} (at {at})"
    )


def check(result) -> SoakReport:
    report = SoakReport()
    report.figure("customers", result.plan.customers)
    report.figure("sending window", f"{result.sent_until - result.started:.0f} s")
    report.figure(
        "deliveries accepted",
        f"{result.deliveries.accepted} ({result.deliveries.retried} after a retry)",
    )
    report.figure("faults", len(result.faults))
    for fault in result.faults:
        report.figure(f"  +{fault.at - result.started:6.1f} s", fault.name)
    llm = Counter(result.llm_statuses)
    report.figure("LLM calls by status", dict(sorted(llm.items())))
    report.figure("tracebacks in process logs", result.tracebacks or "none")
    report.hold(
        "every worker and web process was running when the faults stopped",
        not result.down_at_end,
        ", ".join(result.down_at_end),
    )
    report.hold("drained: nothing pending, claimed or running", result.drained)
    turns = {turn.pk: turn for turn in Turn.objects.all()}
    inbound = list(Message.objects.filter(direction=Message.Direction.INBOUND))
    outbound = list(
        Message.objects.filter(direction=Message.Direction.OUTBOUND).select_related(
            "conversation__customer"
        )
    )
    check_messages(report, result, inbound, turns)
    check_replies(report, result, inbound, outbound, turns)
    check_turns(report, result, turns)
    check_latency(report, inbound, outbound, turns)
    check_recovery(report, result, inbound, turns)
    check_crm(report, result)
    check_handoffs(report, inbound, outbound)
    check_voice_notes(report, result, inbound)
    return report
