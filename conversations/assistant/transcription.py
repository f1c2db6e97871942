"""Voice notes to text with OpenAI's audio transcription API (the same OPENAI_API_KEY and
OPENAI_BASE_URL as the replies):

    client.audio.transcriptions.create(model=..., file=("voice.ogg", data, mime), language="pt")

WhatsApp's ogg/opus voice notes are named `.ogg`: some models refuse `.opus` and `.oga`. The
whole call, the SDK's retries included, runs inside asyncio.timeout(timeout_s), which the engine
cuts to what is left of the turn's media budget. No key (offline), or any failure, raises
TranscriptionError with a reason free of personal data: the message then has no transcript and
the assistant asks the customer to type.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import openai
from django.conf import settings

from conversations.assistant.openai_assistant import loop_client

logger = logging.getLogger(__name__)

# One retry of the SDK (connection errors, 408, 409, 429, 5xx), within the time budget.
MAX_RETRIES = 1
LANGUAGE = "pt"
# The file name the API sees, by mime type; ".ogg" for WhatsApp's opus voice notes.
FILE_NAMES = {
    "audio/ogg": "voice.ogg",
    "audio/opus": "voice.ogg",
    "audio/mpeg": "voice.mp3",
    "audio/mp4": "voice.m4a",
    "audio/aac": "voice.m4a",
    "audio/amr": "voice.amr",
}


class TranscriptionError(Exception):
    """No transcript. `reason` is short and has no personal data."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:255]


@dataclass(frozen=True)
class Transcribed:
    text: str
    ms: int
    # The API's usage where it gives it: input/audio/output tokens, or the audio's seconds.
    usage: dict = field(default_factory=dict)


def file_name(mime_type: str) -> str:
    return FILE_NAMES.get(mime_type.split(";", 1)[0].strip().lower(), "voice.ogg")


async def transcribe(data: bytes, mime_type: str, *, model: str, timeout_s: float) -> Transcribed:
    """The voice note's text; raises TranscriptionError."""
    if not settings.OPENAI_API_KEY:
        raise TranscriptionError("offline: no OPENAI_API_KEY")
    if timeout_s <= 0:
        raise TranscriptionError("no time left to transcribe")
    client = loop_client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, max_retries=MAX_RETRIES)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            result = await client.audio.transcriptions.create(
                model=model,
                file=(file_name(mime_type), data, mime_type),
                language=LANGUAGE,
                timeout=timeout_s,
            )
    except (TimeoutError, openai.APITimeoutError):
        raise _failed(started, model, f"no transcript within {timeout_s:g} s") from None
    except openai.APIStatusError as exc:
        raise _failed(
            started, model, f"HTTP {exc.status_code} from the transcription API"
        ) from None
    except openai.APIConnectionError:
        raise _failed(started, model, "could not connect to the transcription API") from None
    except openai.OpenAIError as exc:
        raise _failed(started, model, f"transcription error ({type(exc).__name__})") from None
    text = (getattr(result, "text", "") or "").strip()
    ms = round((time.monotonic() - started) * 1000)
    if not text:
        raise _failed(started, model, "empty transcript")
    logger.info("voice note transcribed by %s in %d ms (%d chars)", model, ms, len(text))
    return Transcribed(text=text, ms=ms, usage=usage_of(result))


def usage_of(result) -> dict:
    """{"input_tokens", "audio_tokens", "output_tokens"} or {"seconds"}, as the API reports."""
    usage = getattr(result, "usage", None)
    if usage is None:
        return {}
    if getattr(usage, "type", "") == "duration":
        return {"seconds": float(usage.seconds or 0)}
    details = getattr(usage, "input_token_details", None)
    return {
        "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
        "audio_tokens": int(getattr(details, "audio_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
    }


def _failed(started: float, model: str, reason: str) -> TranscriptionError:
    logger.warning(
        "transcription failed after %.0f ms with %s: %s",
        (time.monotonic() - started) * 1000,
        model,
        reason,
    )
    return TranscriptionError(reason)
