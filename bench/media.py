"""Voice notes and photos benchmark (issue 15): prints figures, asserts nothing. Embedded mode,
no services needed:

    env -u DATABASE_URL -u REDIS_URL .venv/bin/python bench/media.py

1. The webhook's share: parsing a notification with a text vs a voice note vs a photo
   (payloads.parse_notification, µs per message; ingest then stores 7 more short columns).
2. The two-step download (conversations.whatsapp.media) from a local Graph stand-in: a 30 KB
   voice note and a 300 KB photo, median and p95 ms (the wire's floor: what our code adds).
3. A voice note's turn with a CRM lookup of 80 ms and a transcription of 80 ms (both scaled
   1:100 from seconds), one after the other vs at once as the engine runs them (ms).
"""

import asyncio
import hashlib
import json
import logging
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")

import django

django.setup()
logging.disable(logging.INFO)  # the figures only

from django.conf import settings  # noqa: E402

from conversations.assistant.transcription import transcribe  # noqa: E402
from conversations.whatsapp.media import download_media  # noqa: E402
from conversations.whatsapp.payloads import parse_notification  # noqa: E402

DELAY_S = 0.08
FILES = {
    "voice": (b"OggS" + os.urandom(30_000), "audio/ogg"),
    "photo": (os.urandom(300_000), "image/jpeg"),
}


class Graph(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms per small answer

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        name = self.path.strip("/").split("/")[-1]
        data, mime = FILES[name]
        if self.path.startswith("/files/"):
            return self._send(data, mime)
        info = {"url": f"{BASE}/files/{name}", "mime_type": mime, "file_size": len(data)}
        info["sha256"] = hashlib.sha256(data).hexdigest()
        self._send(json.dumps(info).encode(), "application/json")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(DELAY_S)
        self._send(b'{"text": "oi, minha internet caiu"}', "application/json")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Graph)
BASE = f"http://127.0.0.1:{server.server_address[1]}"
threading.Thread(target=server.serve_forever, daemon=True).start()
settings.WHATSAPP_ACCESS_TOKEN = "bench"
settings.WHATSAPP_API_BASE_URL = BASE
settings.OPENAI_API_KEY = "bench"
settings.OPENAI_BASE_URL = f"{BASE}/v1"


def notification(message: dict) -> dict:
    base = {"from": "5511987654321", "id": "wamid.B", "timestamp": "1764000000", **message}
    value = {"messaging_product": "whatsapp", "messages": [base]}
    return {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}


def parse_cost() -> None:
    kinds = {
        "text": {"type": "text", "text": {"body": "minha internet caiu"}},
        "voice note": {
            "type": "audio",
            "audio": {"id": "1234567890", "mime_type": "audio/ogg; codecs=opus", "sha256": "x="},
        },
        "photo": {
            "type": "image",
            "image": {"id": "1234567890", "mime_type": "image/jpeg", "caption": "o roteador"},
        },
    }
    print("1. parse_notification, µs per message (median of 5 x 5000)")
    for name, message in kinds.items():
        body = notification(message)
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(5000):
                parse_notification(body)
            rounds.append((time.perf_counter() - started) / 5000 * 1e6)
        print(f"   {name:10s} {statistics.median(rounds):6.1f}")


def download_cost() -> None:
    print("2. two-step download from localhost, ms (50 each)")
    for name in ("voice", "photo"):
        kind = "audio" if name == "voice" else "image"
        times = []
        for _ in range(50):
            started = time.perf_counter()
            download_media(name, kind, max_bytes=5 * 1024 * 1024)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(
            f"   {name:6s} {len(FILES[name][0]) // 1000:4d} KB  p50 {statistics.median(times):5.2f}  p95 {p95:5.2f}"
        )


async def voice_turn(parallel: bool) -> float:
    mime = FILES["voice"][1]

    async def media():
        got = await asyncio.to_thread(download_media, "voice", "audio")
        await transcribe(got.data, mime, model="gpt-4o-mini-transcribe", timeout_s=5)

    crm = asyncio.sleep  # the CRM lookup's wait
    started = time.perf_counter()
    if parallel:
        await asyncio.gather(crm(DELAY_S), media())
    else:
        await crm(DELAY_S)
        await media()
    return (time.perf_counter() - started) * 1000


def turn_cost() -> None:
    print(
        "3. a voice note's turn until the LLM call: CRM 80 ms, transcription 80 ms (median of 10)"
    )
    for parallel in (False, True):
        times = [asyncio.run(voice_turn(parallel)) for _ in range(10)]
        label = "at once (ours)" if parallel else "one after the other"
        print(f"   {label:20s} {statistics.median(times):6.1f} ms")


if __name__ == "__main__":
    parse_cost()
    download_cost()
    turn_cost()
    server.shutdown()
