"""Re-wakes conversations whose wake was lost: Channels delivery is at-most-once and a worker can
die mid-turn, but the database is the queue of record.

Two kinds of leftovers:
- pending inbound messages older than claims.PENDING_GRACE_S: their wake was dropped (or a worker
  buffering it died);
- `processing` claims older than the lock TTL whose conversation lock is gone: the worker that
  claimed them died. They go back to `pending` (order is by arrival, so it is kept). A claim that
  old while the lock is still held is a live long turn (its holder renews the lock): left alone.

Runs inside every worker (`sweep_forever`) and as `manage.py sweep_pending` for operators.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from conversations import events
from conversations.engine import claims
from conversations.engine.auto_resolve import auto_resolve
from conversations.keys import lock_key
from conversations.models import Message, Turn
from conversations.runtime import get_runtime
from conversations.threads import in_thread

logger = logging.getLogger(__name__)

# The in-worker sweep runs every lock_ttl/4, within these bounds.
MIN_INTERVAL_S = 5.0
MAX_INTERVAL_S = 30.0


@dataclass
class SweepReport:
    stale_pending: dict[int, int] = field(default_factory=dict)  # conversation -> messages
    dead_claims: dict[int, int] = field(default_factory=dict)  # reset (or would be)
    live_claims: dict[int, int] = field(default_factory=dict)  # old, but the lock is held
    auto_resolved: list[int] = field(default_factory=list)  # quiet conversations resolved

    @property
    def to_wake(self) -> list[int]:
        return sorted(set(self.stale_pending) | set(self.dead_claims))


def _counts(queryset) -> dict[int, int]:
    rows = queryset.values("conversation_id").annotate(n=Count("id")).order_by("conversation_id")
    return {row["conversation_id"]: row["n"] for row in rows}


def sweep(*, dry_run: bool = False) -> SweepReport:
    """Find leftovers and reset dead claims (unless dry_run). The caller wakes `to_wake`."""
    now = timezone.now()
    lock_ttl = get_runtime().lock_ttl_seconds
    inbound = Message.objects.filter(direction=Message.Direction.INBOUND)
    report = SweepReport()
    report.stale_pending = _counts(
        inbound.filter(
            state=Message.State.PENDING,
            created_at__lt=now - timedelta(seconds=claims.PENDING_GRACE_S),
        )
    )
    old_claims = inbound.filter(
        state=Message.State.PROCESSING, claimed_at__lt=now - timedelta(seconds=lock_ttl)
    )
    for conversation_id, count in _counts(old_claims).items():
        if cache.has_key(lock_key(conversation_id)):  # a live turn renews it
            report.live_claims[conversation_id] = count
            continue
        report.dead_claims[conversation_id] = count
        if dry_run:
            continue
        dead = old_claims.filter(conversation_id=conversation_id)
        turn_ids = set(dead.values_list("turn_id", flat=True))
        reset = dead.update(state=Message.State.PENDING, claimed_at=None, updated_at=now)
        Turn.objects.filter(pk__in=turn_ids, outcome=Turn.Outcome.RUNNING).update(
            outcome=Turn.Outcome.LOST_LOCK,
            finished_at=now,
            detail="worker gone; the sweeper put its messages back in the queue",
        )
        logger.warning(
            "conversation %s: %d claimed messages outlived the lock TTL; back to pending",
            conversation_id,
            reset,
        )
    return report


def interval_seconds() -> float:
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, get_runtime().lock_ttl_seconds / 4))


async def sweep_once() -> SweepReport:
    report = await in_thread(sweep)()
    for conversation_id in report.to_wake:
        await events.asend_wake(conversation_id)
    if report.to_wake:
        logger.info("sweeper woke %d conversations", len(report.to_wake))
    try:
        report.auto_resolved = await in_thread(auto_resolve)()
    except Exception as exc:  # the wakes above matter more; try again next round
        logger.warning("auto-resolve failed: %s", type(exc).__name__)
    return report


async def sweep_forever() -> None:
    """The in-worker sweeper: every worker process runs one (resets are conditional updates)."""
    while True:
        await asyncio.sleep(interval_seconds())
        try:
            await sweep_once()
        except Exception as exc:  # the database or Redis is down: try again next round
            logger.warning("sweep failed: %s", type(exc).__name__)
