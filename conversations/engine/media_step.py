"""A turn's voice notes and photos, made ready for the assistant while the CRM lookup runs
(conversations.engine.turn_run gathers both): each is downloaded from the Cloud API and stored
through Django's storage, and each voice note is transcribed; all within the runtime setting
media_timeout_seconds.

A failure never fails the turn: the message keeps its placeholder ("[áudio não pôde ser
baixado]"), media_status `failed` and the reason, and is fetched again later (the next turn that
reads it as history does not; `fetch_media` and the staff media view do), apart from the
message's dedupe. Logs name the message id and the reason only, never the content.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db.models import Q

from conversations.assistant.transcription import TranscriptionError, transcribe
from conversations.models import Message
from conversations.threads import in_io_thread, in_thread
from conversations.whatsapp.media import MediaError, download_media

logger = logging.getLogger(__name__)

MediaStatus = Message.MediaStatus
# Download attempts per message, across turns and retries by hand; each is itself bounded
# (conversations.whatsapp.media.MAX_ATTEMPTS tries within the time left).
MAX_DOWNLOADS = 5
FOR_THE_ASSISTANT = ("audio", "image")
SUFFIXES = {
    "audio/ogg": ".ogg",
    "audio/opus": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/csv": ".csv",
}


@dataclass
class TurnMedia:
    """What the media step gave the turn: the batch's photos (message id -> bytes, mime type)
    and the transcription's time and usage, summed over the turn's voice notes."""

    images: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)  # message ids already prepared in this turn
    transcription_ms: int = 0
    transcription_usage: dict = field(default_factory=dict)

    def add_usage(self, usage: dict) -> None:
        for key, value in usage.items():
            self.transcription_usage[key] = self.transcription_usage.get(key, 0) + value


def max_bytes(kind: str, runtime) -> int | None:
    """The runtime setting's limit for a kind; None: the Cloud API's own (media.py)."""
    megabytes = {"audio": runtime.media_audio_max_mb, "image": runtime.media_image_max_mb}
    return megabytes[kind] * 1024 * 1024 if kind in megabytes else None


async def prepare_media(batch: list[Message], runtime, media: TurnMedia) -> None:
    """Download, store and transcribe the batch's voice notes and photos not prepared yet
    (the messages are updated in place: media_status, transcript...). Never raises."""
    todo = [
        m
        for m in batch
        if m.pk not in media.done and m.type in FOR_THE_ASSISTANT and m.media_status
    ]
    if not todo:
        return
    deadline = time.monotonic() + runtime.media_timeout_seconds
    results = await asyncio.gather(
        *(_prepare_one(m, runtime, media, deadline) for m in todo), return_exceptions=True
    )
    for message, result in zip(todo, results, strict=True):
        media.done.add(message.pk)
        if isinstance(result, BaseException):  # a bug must not lose the turn
            logger.error("message %s: media step crashed", message.pk, exc_info=result)


async def _prepare_one(message: Message, runtime, media: TurnMedia, deadline: float) -> None:
    if message.type == "audio" and message.transcript:
        return  # transcribed already (a turn retried after a crash)
    data = await in_io_thread(fetch_and_store)(message, runtime, deadline)
    if data is None:
        return
    if message.type == "image":
        media.images[message.pk] = (data, message.media_mime_type)
    elif not message.transcript:
        await _transcribe(message, data, runtime, media, deadline)


async def _transcribe(message: Message, data: bytes, runtime, media: TurnMedia, deadline):
    started = time.monotonic()
    try:
        result = await transcribe(
            data,
            message.media_mime_type or "audio/ogg",
            model=runtime.transcription_model,
            timeout_s=deadline - time.monotonic(),
        )
    except TranscriptionError as exc:
        media.transcription_ms += round((time.monotonic() - started) * 1000)
        logger.info("message %s: voice note not transcribed: %s", message.pk, exc.reason)
        return
    media.transcription_ms += result.ms
    media.add_usage(result.usage)
    message.transcript = result.text
    await in_thread(_save)(message, transcript=result.text)


def fetch_and_store(
    message: Message, runtime, deadline: float | None, *, force: bool = False
) -> bytes | None:
    """The message's media bytes: read from storage when stored already, else downloaded and
    stored (media_status, size, attempts and error recorded). None when unavailable.
    `force`: try even when the attempts are spent (staff opening it, after fixing a token)."""
    if message.media_status == MediaStatus.STORED and message.media_file:
        try:
            with message.media_file.storage.open(message.media_file.name, "rb") as stored:
                return stored.read()
        except OSError as exc:
            logger.warning("message %s: stored media unreadable: %s", message.pk, exc)
            return None
    if message.media_attempts >= MAX_DOWNLOADS and not force:
        return None
    attempts = message.media_attempts + 1
    try:
        got = download_media(
            message.media_id,
            message.type,
            max_bytes=max_bytes(message.type, runtime),
            expected_sha256=message.media_sha256,
            deadline=deadline,
        )
    except MediaError as exc:
        logger.info("message %s: media not downloaded: %s", message.pk, exc.reason)
        # Not worth trying again (404, wrong type or size): spend the remaining attempts.
        _save(
            message,
            media_status=MediaStatus.FAILED,
            media_attempts=attempts if exc.retryable else MAX_DOWNLOADS,
            media_error=exc.reason,
        )
        return None
    # Through the field: its upload_to (conversations.models.media_path) makes the path unguessable.
    message.media_file.save(f"media{SUFFIXES.get(got.mime_type, '')}", ContentFile(got.data), False)
    _save(
        message,
        media_file=message.media_file.name,
        media_status=MediaStatus.STORED,
        media_mime_type=got.mime_type,
        media_size=len(got.data),
        media_attempts=attempts,
        media_error="",
    )
    return got.data


def _save(message: Message, **fields) -> None:
    for name, value in fields.items():
        setattr(message, name, value)
    Message.objects.filter(pk=message.pk).update(**fields)


def media_to_fetch_again(limit: int) -> list[Message]:
    """Voice notes and photos no turn will fetch: failed downloads with attempts left, and
    media still pending on a message no turn will take (a person handled it, or its turn
    ended), oldest first."""
    retryable = Q(media_status=MediaStatus.FAILED, media_attempts__lt=MAX_DOWNLOADS)
    orphaned = Q(media_status=MediaStatus.PENDING) & ~Q(
        state__in=[Message.State.PENDING, Message.State.PROCESSING]
    )
    return list(
        Message.objects.filter(
            retryable | orphaned,
            direction=Message.Direction.INBOUND,
            type__in=FOR_THE_ASSISTANT,
        )
        .defer("raw")
        .order_by("created_at", "id")[:limit]
    )
