"""The WhatsApp Cloud API's two sides for end-to-end tests.

Outbound: a fake Cloud API on FakeHTTPServer that accepts sends, records them and answers wamids.
Inbound: signed webhook deliveries to our server, as Meta makes them.

    with FakeCloudAPI() as cloud:
        env.update(cloud.env())  # WHATSAPP_* for the processes under test
        deliver(server_url, text_webhook(wa_id="5511987654321", wamid="wamid.1", text="oi"))
        cloud.wait_for_texts(lambda texts: len(texts) >= 1)
        cloud.texts()  # [SentText(to, body, wamid), ...] in arrival order
"""

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from tests.fakes.http import FakeHTTPServer, Reply, Request
from tests.fakes.whatsapp_payloads import (
    PHONE_NUMBER_ID,
    encode,
    notification,
    signed_headers,
    text_message,
)

APP_SECRET = "e2e-app-secret"
ACCESS_TOKEN = "e2e-access-token"


def text_webhook(*, wa_id: str, wamid: str, text: str) -> dict:
    """One inbound text message in the Cloud API's webhook shape."""
    return notification([text_message(wa_id, text, wamid=wamid)])


def deliver(base_url: str, payload: dict, *, secret: str = APP_SECRET) -> requests.Response:
    """POST a webhook signed like Meta does, over the real wire."""
    body = encode(payload)
    return requests.post(
        f"{base_url}/webhooks/whatsapp/",
        data=body,
        headers={"Content-Type": "application/json", **signed_headers(secret, body)},
        timeout=10,
    )


@dataclass(frozen=True)
class SentText:
    to: str
    body: str
    wamid: str


class FakeCloudAPI:
    def __init__(self, *, token: str = ACCESS_TOKEN, phone_number_id: str = PHONE_NUMBER_ID):
        self.token = token
        self.phone_number_id = phone_number_id
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._texts: list[SentText] = []
        self.typing_indicators: list[str] = []  # inbound wamids marked read with typing
        self.rejected: list[Request] = []  # wrong path, token or shape
        self.server = FakeHTTPServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def env(self) -> dict[str, str]:
        """The WHATSAPP_* variables that point a supportbot process at this fake."""
        return {
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "e2e-verify-token",
            "WHATSAPP_ACCESS_TOKEN": self.token,
            "WHATSAPP_PHONE_NUMBER_ID": self.phone_number_id,
            "WHATSAPP_API_BASE_URL": self.url,
        }

    def __enter__(self) -> "FakeCloudAPI":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def _reject(self, request: Request, status: int, message: str) -> Reply:
        with self._lock:
            self.rejected.append(request)
        return Reply(status, {"error": {"message": message, "type": "OAuthException", "code": 100}})

    def _handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != f"/{self.phone_number_id}/messages":
            return self._reject(request, 404, f"unknown path {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reject(request, 401, "invalid access token")
        try:
            body = request.json()
        except ValueError:
            return self._reject(request, 400, "body is not JSON")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return self._reject(request, 400, "messaging_product must be whatsapp")
        if body.get("status") == "read" and body.get("message_id"):
            with self._lock:
                self.typing_indicators.append(body["message_id"])
            return Reply(200, {"success": True})
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        if body.get("type") != "text" or not body.get("to") or not text.get("body"):
            return self._reject(request, 400, "expected a text message with to and text.body")
        wamid = f"wamid.fake-{next(self._ids)}"
        with self._lock:
            self._texts.append(SentText(body["to"], text["body"], wamid))
        return Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": wamid}]})

    def texts(self, to: str | None = None) -> list[SentText]:
        with self._lock:
            return [sent for sent in self._texts if to is None or sent.to == to]

    def wait_for_texts(
        self, done: Callable[[list[SentText]], bool], *, timeout: float = 20.0
    ) -> list[SentText]:
        """Poll until `done(all texts so far)`; raise AssertionError with what arrived on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            texts = self.texts()
            if done(texts):
                return texts
            if time.monotonic() > deadline:
                raise AssertionError(f"Cloud API got {len(texts)} texts in {timeout} s: {texts!r}")
            time.sleep(0.05)
