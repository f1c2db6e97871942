"""The soak's peers (bench/soak.py, tests/e2e/test_soak.py): a CRM and a Responses API with the
latencies of the systems we replace scaled 1:10 and faults that can be switched on while they
run, and a redis-server of the soak's own that can be restarted (never the machine's shared one).

Every call is logged with its wall-clock time, so the checks can compare it with the rows.
"""

import contextlib
import json
import random
import subprocess
import threading
import time
from dataclasses import dataclass

import redis

from tests.fakes.http import FakeHTTPServer, Reply, Request
from tests.fakes.ports import free_port
from tests.fakes.responses_api import function_call, response_object
from tests.fakes.soak_media import SoakTranscriber
from tests.fakes.soak_traffic import PERSON_TEXT

CRM_TOKEN = "soak-crm-token"
LLM_REPLY = "Certo, já verifiquei aqui e vou te ajudar com isso."
POINT = {"id": "PI-1", "address": "Rua Augusta, 1200", "city": "São Paulo", "region": "Centro"}


@dataclass(frozen=True)
class CrmCall:
    at: float  # time.time() when it arrived
    document: str
    mode: str  # "ok", "down" (503) or "slow" (answered after the client's timeout)
    answered: float = 0.0  # when its answer was due (at + the latency it was given)


class SoakCrm:
    """The CRM contract for any document, with a switchable mode: ok, down (503) or slow."""

    def __init__(self, latency_s=(0.8, 1.0), slow_s: float = 5.0, seed: int = 1):
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.mode = "ok"
        self.calls: list[CrmCall] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.server = FakeHTTPServer(self._handle)

    def env(self) -> dict[str, str]:
        return {"CRM_BASE_URL": self.server.url, "CRM_API_TOKEN": CRM_TOKEN}

    def _handle(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "customers" or parts[2] != "installation-points":
            return Reply(404, {"error": "no such route"})
        if request.headers.get("Authorization") != f"Bearer {CRM_TOKEN}":
            return Reply(401, {"error": "unauthorised"})
        with self._lock:
            mode = self.mode
            latency = self.slow_s if mode == "slow" else self._rng.uniform(*self.latency_s)
            now = time.time()
            self.calls.append(CrmCall(now, parts[1], mode, now + latency))
        if mode == "down":
            return Reply(503, {"error": "maintenance"})
        # Interruptible, so stopping the soak never waits for a slow answer.
        self._stopping.wait(latency)
        return Reply(200, [dict(POINT, status="ativo")])

    def __enter__(self) -> "SoakCrm":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self.server.stop()


class SoakLLM:
    """The Responses API: a reply after 1.5-2 s; `error_rate` of calls answer 500 at once; while
    `throttle_until` (time.time()) is in the future every call answers 429 with Retry-After.

    A call whose input holds a customer's request for a person (PERSON_TEXT) is answered with a
    transfer_to_human function call instead of text. Every call's input is kept (`inputs`, as
    JSON text) so the checks can read what the model was given. It also serves the
    transcription endpoint (OPENAI_BASE_URL is one for both), never failing it."""

    def __init__(self, latency_s=(1.5, 2.0), error_rate: float = 0.05, seed: int = 2):
        self.latency_s = latency_s
        self.error_rate = error_rate
        self.throttle_until = 0.0
        self.retry_after_s = 1
        self.statuses: list[int] = []
        self.inputs: list[str] = []
        self.transcriber = SoakTranscriber()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.server = FakeHTTPServer(self._handle)

    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": "soak-key", "OPENAI_BASE_URL": f"{self.server.url}/v1"}

    def throttle(self, seconds: float) -> None:
        self.throttle_until = time.time() + seconds

    def _handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path.endswith("/audio/transcriptions"):
            return self.transcriber.handle(request)
        if request.method != "POST" or not request.path.rstrip("/").endswith("/responses"):
            return Reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        body = request.json()
        # The input only: the instructions name "atendente" too.
        given = json.dumps(body.get("input"), ensure_ascii=False)
        with self._lock:
            self.inputs.append(given)
            if time.time() < self.throttle_until:
                status = 429
            else:
                status = 500 if self._rng.random() < self.error_rate else 200
            self.statuses.append(status)
            latency = self._rng.uniform(*self.latency_s)
        if status == 429:
            error = {"message": "rate limited", "type": "rate_limit_error", "code": None}
            return Reply(429, {"error": error}, {"Retry-After": str(self.retry_after_s)})
        if status == 500:
            error = {"message": "fake failure", "type": "server_error", "code": None}
            return Reply(500, {"error": error})
        if self._stopping.wait(latency):
            raise ConnectionAbortedError  # shutting down: drop the connection quietly
        model, number = body.get("model", ""), len(self.statuses)
        if PERSON_TEXT in given:
            transfer = function_call("transfer_to_human", reason="o cliente pediu um atendente")
            return Reply(200, response_object("", model, number, items=[transfer]))
        return Reply(200, response_object(LLM_REPLY, model, number))

    def __enter__(self) -> "SoakLLM":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self.server.stop()


class OwnRedis:
    """A redis-server of the soak's own on a free loopback port, with no persistence, so a
    restart drops every lock, cache entry and channel message (as SHUTDOWN NOSAVE does)."""

    def __init__(self, log_path: str = "/dev/null"):
        self.port = free_port()
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--logfile", self.log_path]
        self.popen = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=1)
        while True:
            try:
                client.ping()
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline or self.popen.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def restart(self, down_s: float = 1.0) -> None:
        """SHUTDOWN NOSAVE, then start again on the same port after `down_s`: everything in it
        is lost, and clients see connection errors meanwhile."""
        # It answers the shutdown by closing the connection.
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=self.port, socket_timeout=2).shutdown(nosave=True)
        if self.popen is not None:
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> "OwnRedis":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
