"""Retention (LGPD art. 6 III, art. 16): message content older than the runtime setting "keep
message content" and media files older than "keep media files" are erased, in small batches,
oldest first. Conversations, turns and figures stay; each wamid stays as a hash (dedupe).

Every worker runs purge_forever(); `manage.py purge` runs one pass. Each batch is a short
transaction of its own that takes only rows no other pass holds (SKIP LOCKED on PostgreSQL), so
concurrent passes split the work and ingest, which never writes old rows, never waits on them.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from conversations.models import Message
from conversations.privacy import audit
from conversations.privacy.fields import (
    MESSAGE_CONTENT_BLANKS,
    MESSAGE_FILE_FIELDS,
    forget_wamids,
)
from conversations.privacy.files import delete_files
from conversations.runtime import get_runtime
from conversations.threads import in_thread

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# One pass does at most this many batches per kind; the next pass goes on where it stopped.
MAX_BATCHES_PER_PASS = 200
INTERVAL_S = 60.0
ACTOR = "retention pass"


@dataclass
class PurgeReport:
    content_cutoff: object = None
    media_cutoff: object = None
    messages: int = 0
    files: int = 0
    batches: int = 0
    more: bool = False  # stopped at MAX_BATCHES_PER_PASS with work left
    counts: dict = field(default_factory=dict)


def cutoffs(now=None):
    runtime = get_runtime()
    now = now or timezone.now()
    return (
        now - timedelta(days=runtime.content_retention_days),
        now - timedelta(days=runtime.media_retention_days),
    )


def _expired_content(cutoff):
    return Message.objects.filter(redacted_at=None, created_at__lt=cutoff)


def _expired_media(cutoff):
    return Message.objects.filter(created_at__lt=cutoff).exclude(media_file="")


def _take(queryset, fields, after):
    """The next batch, oldest first, locked for this transaction (skipping rows another pass
    holds, where the database can). `after`: the previous batch's newest created_at, so a pass
    moves forward instead of rescanning the index entries its own batches left dead."""
    if after is not None:
        queryset = queryset.filter(created_at__gte=after)
    batch = queryset.order_by("created_at").values_list("pk", "created_at", *fields)
    batch = batch[:BATCH_SIZE]
    if connection.features.has_select_for_update_skip_locked:
        batch = batch.select_for_update(skip_locked=True, of=("self",))
    return list(batch)


def content_batch(cutoff, after=None) -> tuple[int, object]:
    """Erase the content of the next batch; (rows, the newest created_at) or (0, None)."""
    now = timezone.now()
    with transaction.atomic():
        taken = _take(_expired_content(cutoff), ["provider_id", "wamid_hash"], after)
        if not taken:
            return 0, None
        Message.objects.filter(pk__in=[pk for pk, *_ in taken]).update(
            **MESSAGE_CONTENT_BLANKS,
            **forget_wamids([(pk, wamid, kept) for pk, _, wamid, kept in taken]),
            redacted_at=now,
            updated_at=now,
        )
    return len(taken), taken[-1][1]


def media_batch(cutoff, after=None) -> tuple[int, object]:
    """Delete the media files of the next batch; (rows, the newest created_at) or (0, None)."""
    with transaction.atomic():
        taken = _take(_expired_media(cutoff), MESSAGE_FILE_FIELDS, after)
        if not taken:
            return 0, None
        delete_files([name for _, _, *names in taken for name in names if name])
        Message.objects.filter(pk__in=[pk for pk, *_ in taken]).update(
            **{f: "" for f in MESSAGE_FILE_FIELDS}, updated_at=timezone.now()
        )
    return len(taken), taken[-1][1]


def purge(*, dry_run: bool = False, now=None) -> PurgeReport:
    """One retention pass; with dry_run only counts what it would erase."""
    content_cutoff, media_cutoff = cutoffs(now)
    report = PurgeReport(content_cutoff, media_cutoff)
    if dry_run:
        report.messages = _expired_content(content_cutoff).count()
        report.files = _expired_media(media_cutoff).count()
        return report
    for kind, batch, cutoff in (
        ("files", media_batch, media_cutoff),
        ("messages", content_batch, content_cutoff),
    ):
        after = None
        for _ in range(MAX_BATCHES_PER_PASS):
            done, after = batch(cutoff, after)
            if not done:
                break
            setattr(report, kind, getattr(report, kind) + done)
            report.batches += 1
        else:
            report.more = True
    if report.messages or report.files:
        audit.record("purge", ACTOR, {"messages": report.messages, "files": report.files})
        logger.info("retention pass: %d messages, %d files", report.messages, report.files)
    return report


async def purge_forever() -> None:
    """The in-worker retention pass, every INTERVAL_S (sooner while work is left)."""
    while True:
        await asyncio.sleep(INTERVAL_S)
        try:
            while (await in_thread(purge)()).more:
                await asyncio.sleep(1.0)  # leave room for the turns between passes
        except Exception as exc:  # the database is down: try again next round
            logger.warning("retention pass failed: %s", type(exc).__name__)
