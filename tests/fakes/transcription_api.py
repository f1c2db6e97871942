"""A local stand-in for OpenAI's `POST /v1/audio/transcriptions`, so tests run the real SDK over
the wire and see the multipart form it sends.

    with FakeTranscriptionAPI(text="minha internet caiu") as api:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = api.url
        ...
        api.calls[0].parts["file"].filename   # "voice.ogg"
        api.calls[0].fields["model"], api.calls[0].fields["language"]

Knobs (changeable while running): text; status (answer every call with it, e.g. 400); delay_s
(a slow model); usage (the `usage` object answered).
"""

import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

from tests.fakes.http import FakeHTTPServer, Reply, Request

TOKEN_USAGE = {
    "type": "tokens",
    "input_tokens": 60,
    "input_token_details": {"audio_tokens": 50, "text_tokens": 10},
    "output_tokens": 12,
    "total_tokens": 72,
}


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class TranscriptionCall:
    content_type: str
    parts: dict[str, Part] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, str]:
        return {
            name: part.data.decode() for name, part in self.parts.items() if part.filename is None
        }


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    parts = {}
    for item in message.iter_parts():
        name = item.get_param("name", header="content-disposition")
        parts[name] = Part(
            name=name,
            filename=item.get_filename(),
            content_type=item.get_content_type(),
            data=item.get_payload(decode=True) or b"",
        )
    return parts


class FakeTranscriptionAPI:
    def __init__(self, text: str = "oi, minha internet caiu", *, status: int = 200):
        self.text = text
        self.status = status
        self.delay_s = 0.0
        self.usage: dict | None = TOKEN_USAGE
        self.calls: list[TranscriptionCall] = []
        self.called = threading.Event()  # set when the first call arrives
        self._stopping = threading.Event()
        self._server = FakeHTTPServer(self._handle)

    @property
    def url(self) -> str:
        return f"{self._server.url}/v1"

    def _handle(self, request: Request) -> Reply:
        if request.method != "POST" or not request.path.endswith("/audio/transcriptions"):
            return Reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        content_type = request.headers.get("Content-Type", "")
        call = TranscriptionCall(content_type)
        if content_type.startswith("multipart/form-data"):
            call.parts = parse_multipart(content_type, request.body)
        self.calls.append(call)
        self.called.set()
        if self._stopping.wait(self.delay_s):
            raise ConnectionAbortedError  # shutting down
        if self.status != 200:
            error = {"message": "Audio file might be corrupted", "type": "invalid_request_error"}
            return Reply(self.status, {"error": error})
        body: dict = {"text": self.text}
        if self.usage is not None:
            body["usage"] = self.usage
        return Reply(200, body)

    def __enter__(self) -> "FakeTranscriptionAPI":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.stop()
