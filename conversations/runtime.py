"""The runtime settings as every worker sees them: an immutable snapshot of the one
RuntimeSettings row, cached per process and reloaded at most every RELOAD_INTERVAL_S.

So a change saved in the admin reaches every process within a few seconds, without a restart and
without a database query per message. `get_runtime()` works from any thread; called from inside an
event loop (where the ORM is not allowed) it serves the cached snapshot and refreshes it in a
short-lived thread. When the database fails, the last snapshot (or the defaults) stays in use.
"""

import asyncio
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connections

from conversations import defaults

logger = logging.getLogger(__name__)

RELOAD_INTERVAL_S = 2.0
# Replaced by tests with a fake clock.
_clock = time.monotonic


def _default_model() -> str:
    return settings.OPENAI_MODEL


@dataclass(frozen=True)
class RuntimeSnapshot:
    """Every RuntimeSettings field, blank texts already replaced by their defaults."""

    crm_cache_ttl_seconds: int = defaults.CRM_CACHE_TTL_SECONDS
    crm_negative_ttl_seconds: int = defaults.CRM_NEGATIVE_TTL_SECONDS
    crm_stale_ttl_seconds: int = defaults.CRM_STALE_TTL_SECONDS
    crm_timeout_seconds: int = defaults.CRM_TIMEOUT_SECONDS
    lock_ttl_seconds: int = defaults.LOCK_TTL_SECONDS
    lock_wait_timeout_seconds: int = defaults.LOCK_WAIT_TIMEOUT_SECONDS
    backoff_base_ms: int = defaults.BACKOFF_BASE_MS
    backoff_cap_ms: int = defaults.BACKOFF_CAP_MS
    debounce_quiet_ms: int = defaults.DEBOUNCE_QUIET_MS
    debounce_max_wait_ms: int = defaults.DEBOUNCE_MAX_WAIT_MS
    supersede_enabled: bool = defaults.SUPERSEDE_ENABLED
    supersede_cap: int = defaults.SUPERSEDE_CAP
    llm_model: str = field(default_factory=_default_model)
    assistant_instructions: str = defaults.ASSISTANT_INSTRUCTIONS
    llm_timeout_seconds: int = defaults.LLM_TIMEOUT_SECONDS
    history_window_messages: int = defaults.HISTORY_WINDOW_MESSAGES
    media_audio_max_mb: int = defaults.MEDIA_AUDIO_MAX_MB
    media_image_max_mb: int = defaults.MEDIA_IMAGE_MAX_MB
    media_timeout_seconds: int = defaults.MEDIA_TIMEOUT_SECONDS
    transcription_model: str = defaults.TRANSCRIPTION_MODEL
    images_enabled: bool = defaults.IMAGES_ENABLED
    image_detail: str = defaults.IMAGE_DETAIL
    fallback_reply: str = defaults.FALLBACK_REPLY
    outage_notice_template: str = defaults.OUTAGE_NOTICE_TEMPLATE
    # Operations (issue 14): the dashboard's token prices (blank: no cost estimate).
    llm_prices: str = defaults.LLM_PRICES
    assistant_tools_enabled: bool = defaults.ASSISTANT_TOOLS_ENABLED
    handoff_message: str = defaults.HANDOFF_MESSAGE
    handoff_closed_template: str = defaults.HANDOFF_CLOSED_TEMPLATE
    hours_monday: str = defaults.BUSINESS_HOURS["monday"]
    hours_tuesday: str = defaults.BUSINESS_HOURS["tuesday"]
    hours_wednesday: str = defaults.BUSINESS_HOURS["wednesday"]
    hours_thursday: str = defaults.BUSINESS_HOURS["thursday"]
    hours_friday: str = defaults.BUSINESS_HOURS["friday"]
    hours_saturday: str = defaults.BUSINESS_HOURS["saturday"]
    hours_sunday: str = defaults.BUSINESS_HOURS["sunday"]
    content_retention_days: int = defaults.CONTENT_RETENTION_DAYS
    media_retention_days: int = defaults.MEDIA_RETENTION_DAYS
    # Staff desk: the worker's auto-resolve pass; the desk's optional messages (empty: none).
    auto_resolve_hours: int = 24
    auto_resolve_waiting: bool = False
    take_over_message: str = ""
    resolve_message: str = ""
    updated_at: datetime | None = None  # None: no row saved yet, these are the defaults

    @classmethod
    def from_row(cls, row) -> "RuntimeSnapshot":
        values = {f.name: getattr(row, f.name) for f in dataclasses.fields(cls)}
        # Blank means "use the default": staff restore a text by clearing it.
        fallbacks = {
            "llm_model": _default_model(),
            "assistant_instructions": defaults.ASSISTANT_INSTRUCTIONS,
            "fallback_reply": defaults.FALLBACK_REPLY,
            "outage_notice_template": defaults.OUTAGE_NOTICE_TEMPLATE,
            "transcription_model": defaults.TRANSCRIPTION_MODEL,
            "handoff_message": defaults.HANDOFF_MESSAGE,
            "handoff_closed_template": defaults.HANDOFF_CLOSED_TEMPLATE,
        }
        for name, fallback in fallbacks.items():
            if not (values[name] or "").strip():
                values[name] = fallback
        return cls(**values)


_snapshot: RuntimeSnapshot | None = None
_loaded_at = 0.0
_lock = threading.Lock()  # one reload at a time per process
_thread_lock = threading.Lock()  # guards _refresh_thread; never held during a query
_refresh_thread: threading.Thread | None = None


def get_runtime() -> RuntimeSnapshot:
    snapshot = _snapshot
    if snapshot is not None and _clock() - _loaded_at < RELOAD_INTERVAL_S:
        return snapshot
    if _in_event_loop():
        return _refresh_from_event_loop(snapshot)
    if snapshot is not None and not _lock.acquire(blocking=False):
        return snapshot  # another thread is reloading right now: the current copy will do
    if snapshot is None:
        _lock.acquire()
    try:
        return _reload()
    finally:
        _lock.release()


def reset_runtime_cache() -> None:
    """Forget the snapshot: the next get_runtime() reads the database (tests, after a save)."""
    global _snapshot, _loaded_at
    with _lock:
        _snapshot = None
        _loaded_at = 0.0


def get_or_create_settings_row():
    """The settings row (the lowest id if someone made several), created with the defaults."""
    from conversations.models import RuntimeSettings

    row = RuntimeSettings.objects.order_by("pk").first()
    if row is None:
        row, _ = RuntimeSettings.objects.get_or_create(pk=1)
    return row


def _load() -> RuntimeSnapshot:
    from conversations.models import RuntimeSettings

    row = RuntimeSettings.objects.order_by("pk").first()
    return RuntimeSnapshot() if row is None else RuntimeSnapshot.from_row(row)


def _reload() -> RuntimeSnapshot:
    """Read the row (caller holds _lock). On a database error keep what we had."""
    global _snapshot, _loaded_at
    if _snapshot is not None and _clock() - _loaded_at < RELOAD_INTERVAL_S:
        return _snapshot  # someone reloaded while we waited for the lock
    try:
        _snapshot = _load()
    except Exception as exc:  # any failure (down, timeout, missing table): keep serving
        logger.warning(
            "runtime settings not reloaded (%s); keeping the %s values",
            type(exc).__name__,
            "previous" if _snapshot is not None else "default",
        )
        if _snapshot is None:
            _snapshot = RuntimeSnapshot()
    # Also after a failure, so a database outage costs one query per interval, not per call.
    _loaded_at = _clock()
    return _snapshot


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _refresh_in_thread() -> None:
    try:
        with _lock:
            _reload()
    finally:
        connections.close_all()  # this thread's connections only; the thread ends now


def _refresh_from_event_loop(snapshot: RuntimeSnapshot | None) -> RuntimeSnapshot:
    """The ORM refuses to run on the event loop's thread: read the row in a helper thread.

    With a snapshot in hand, serve it and refresh in the background (the next call sees the new
    values). Without one (the first call of the process), wait for that thread once.
    """
    global _refresh_thread
    with _thread_lock:
        thread = _refresh_thread
        if thread is None or not thread.is_alive():
            thread = threading.Thread(
                target=_refresh_in_thread, name="runtime-refresh", daemon=True
            )
            _refresh_thread = thread
            thread.start()
    if snapshot is not None:
        return snapshot
    thread.join()
    return _snapshot or RuntimeSnapshot()
