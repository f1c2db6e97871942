"""The soak's voice notes: the Cloud API's two media steps next to its sends, and the
transcription endpoint the soak's LLM fake serves on the same OPENAI_BASE_URL.

Each voice note has a media id of its own ("media-" + its wamid's tail); the file's bytes name
that id, and the fake transcription answers a text that names it too, so the checks can tell
whose transcript a row holds and find it in the LLM's input. Every media request is logged with
its wall-clock time (the checks compare it with when the message was stored).
"""

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass

from tests.fakes.cloud_api import FakeCloudAPI
from tests.fakes.http import Reply, Request
from tests.fakes.transcription_api import parse_multipart

VOICE_MIME_TYPE = "audio/ogg; codecs=opus"
AUDIO_HEADER = b"OggS-soak "


def media_id_of(wamid: str) -> str:
    return "media-" + wamid.removeprefix("wamid.")


def audio_bytes(media_id: str) -> bytes:
    return AUDIO_HEADER + media_id.encode()


def transcript_of(media_id: str) -> str:
    """What the fake transcription hears in a voice note."""
    return f"minha internet caiu de novo, nota {media_id}"


@dataclass(frozen=True)
class MediaRequest:
    at: float  # time.time() when it arrived
    media_id: str
    step: str  # "info" (GET /{media-id}) or "file" (GET the url it handed out)


class SoakCloud(FakeCloudAPI):
    """The Cloud API fake, plus the media endpoints for any "media-..." id."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.media_requests: list[MediaRequest] = []
        self._file_numbers = itertools.count(1)

    def _handle(self, request: Request) -> Reply:
        if request.method != "GET":
            return super()._handle(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reject(request, 401, "invalid access token")
        parts = request.path.split("?")[0].strip("/").split("/")
        if len(parts) == 1 and parts[0].startswith("media-"):
            return self._info(parts[0])
        if len(parts) == 3 and parts[0] == "files" and parts[1].startswith("media-"):
            self._log(parts[1], "file")
            return Reply(200, audio_bytes(parts[1]), {"Content-Type": VOICE_MIME_TYPE})
        return self._reject(request, 404, f"unknown path {request.path}")

    def _log(self, media_id: str, step: str) -> None:
        with self._lock:
            self.media_requests.append(MediaRequest(time.time(), media_id, step))

    def _info(self, media_id: str) -> Reply:
        self._log(media_id, "info")
        data = audio_bytes(media_id)
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/files/{media_id}/{next(self._file_numbers)}",
                "mime_type": VOICE_MIME_TYPE,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            },
        )


class SoakTranscriber:
    """POST /v1/audio/transcriptions: the transcript of the uploaded voice note (from its bytes);
    400 for a file that is not one of the soak's voice notes."""

    def __init__(self):
        self.transcribed: list[str] = []  # media ids, in arrival order
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Reply:
        parts = parse_multipart(request.headers.get("Content-Type", ""), request.body)
        data = parts["file"].data if "file" in parts else b""
        if not data.startswith(AUDIO_HEADER):
            error = {"message": "Audio file might be corrupted", "type": "invalid_request_error"}
            return Reply(400, {"error": error})
        media_id = data.removeprefix(AUDIO_HEADER).decode()
        with self._lock:
            self.transcribed.append(media_id)
        return Reply(200, {"text": transcript_of(media_id)})
