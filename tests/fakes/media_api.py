"""The Cloud API's media endpoints on a local server, as Graph answers them (REFERENCE.md):

    with FakeMediaAPI() as graph:
        settings.WHATSAPP_API_BASE_URL = graph.url
        graph.add("media-1", b"OggS...", "audio/ogg; codecs=opus")
        ...
        graph.requests  # every request, in order: GET /media-1, GET /files/media-1/1, ...

It also accepts the sends of the turns under test (POST /{phone-number-id}/messages), so a
test can point WHATSAPP_API_BASE_URL at it alone.

Step one, `GET /{media-id}` (Bearer), answers `url`, `mime_type`, `sha256` (hex), `file_size`
and `id`; step two, `GET` that url (Bearer and a User-Agent), answers the bytes. Each step-one
answer hands out a new URL. Knobs per media (add()'s keywords): the declared mime type, size
(or a string size), sha256 (a wrong one), `expired_urls` (the first N file fetches answer 401, as
an expired URL does), `info_failures` (the first N step-one calls answer 500).
"""

import hashlib
import itertools
import threading
from dataclasses import dataclass

from tests.fakes.http import FakeHTTPServer, Reply, Request

ACCESS_TOKEN = "media-test-token"


@dataclass
class FakeMedia:
    data: bytes
    mime_type: str
    declared_size: int | str | None = None
    sha256: str | None = None
    expired_urls: int = 0
    expired_status: int = 401  # what an expired URL answers: 401, 403 or 404
    info_failures: int = 0


class FakeMediaAPI:
    def __init__(self, *, token: str = ACCESS_TOKEN):
        self.token = token
        self.media: dict[str, FakeMedia] = {}
        self._urls = itertools.count(1)
        self._lock = threading.Lock()
        self.server = FakeHTTPServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def paths(self) -> list[str]:
        return [request.path for request in self.media_requests()]

    def add(self, media_id: str, data: bytes, mime_type: str, **knobs) -> FakeMedia:
        media = FakeMedia(data, mime_type, **knobs)
        self.media[media_id] = media
        return media

    def __enter__(self) -> "FakeMediaAPI":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def _handle(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": {"message": "invalid token", "code": 190}})
        if request.method == "POST" and request.path.endswith("/messages"):
            return self._accept_send()
        if request.method != "GET":
            return Reply(405, {"error": {"message": "method not allowed"}})
        parts = request.path.split("?")[0].strip("/").split("/")
        if parts[0] == "files" and len(parts) == 3:
            return self._file(parts[1])
        if len(parts) == 1:
            return self._info(parts[0])
        return Reply(404, {"error": {"message": "unknown path"}})

    def _accept_send(self) -> Reply:
        """Replies and typing indicators of the turns under test: accepted, not checked."""
        return Reply(200, {"messages": [{"id": f"wamid.sent-{next(self._urls)}"}]})

    def media_requests(self) -> list[Request]:
        """The media downloads only (not the turn's replies)."""
        return [request for request in self.requests if request.method == "GET"]

    def _info(self, media_id: str) -> Reply:
        media = self.media.get(media_id)
        if media is None:
            return Reply(404, {"error": {"message": "Unsupported get request", "code": 100}})
        with self._lock:
            if media.info_failures > 0:
                media.info_failures -= 1
                return Reply(500, {"error": {"message": "fake failure", "code": 2}})
            number = next(self._urls)
        size = media.declared_size if media.declared_size is not None else len(media.data)
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/files/{media_id}/{number}",
                "mime_type": media.mime_type,
                "sha256": media.sha256 or hashlib.sha256(media.data).hexdigest(),
                "file_size": size,
                "id": media_id,
            },
        )

    def _file(self, media_id: str) -> Reply:
        media = self.media.get(media_id)
        if media is None:
            return Reply(404, "not found")
        with self._lock:
            if media.expired_urls > 0:
                media.expired_urls -= 1
                return Reply(media.expired_status, "URL signature expired")
        return Reply(200, media.data, {"Content-Type": media.mime_type})
