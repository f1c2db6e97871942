"""Ingest benchmark: signed single-message webhooks against a running server, then GET /healthz
(the trivial Django view) on the same server as the floor.

    python bench/ingest.py --url http://127.0.0.1:8000 -n 2000 -c 16 --secret "$WHATSAPP_APP_SECRET"

Prints requests/s, p50, p95 and p99 for both, and the ratio. Targets (issue 2): ingest p95 under
50 ms at concurrency 16 and at least half the floor's requests/s. Nothing is asserted here.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

WEBHOOK_PATH = "/webhooks/whatsapp/"
FLOOR_PATH = "/healthz"


def sign(secret: bytes, body: bytes) -> str:
    # Same as conversations.whatsapp.signature.sign_body; repeated so the script runs without Django.
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_body(index: int, customers: int, run_id: str, first_sender: int = 0) -> bytes:
    sender = f"55119{first_sender + index % customers:08d}"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": f"Bench {index}"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.BENCH.{run_id}.{index}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": f"mensagem de teste {index}"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of local server processes (Linux /proc), 0 without --server-pid."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float = 0.0  # seconds of the server processes' CPU during the run
    client_cpu: float = 0.0  # seconds of this (client) process's CPU during the run

    @property
    def client_cpu_ms_per_request(self) -> float:
        # The client shares the machine's CPUs with the server: its cost is part of the latency.
        return self.client_cpu / max(1, len(self.latencies) + self.errors) * 1000

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu / max(1, len(self.latencies) + self.errors) * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


class Connection:
    """One keep-alive HTTP/1.1 connection sending pre-built requests.

    A raw socket rather than an HTTP library: the client shares the machine's two cores with
    the server, PostgreSQL and Redis, and `requests` spent ~0.7 ms of CPU per request, as much
    as a fifth of what it measured. Responses are read by Content-Length (Django always sets it).
    """

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request(self, raw: bytes) -> int:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for header in lines[1:]:
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("response without Content-Length")
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        return status

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""


def http_request(method: str, url: str, body: bytes | None, headers: dict) -> bytes:
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def run(name: str, requests_: list, args: argparse.Namespace, expect: int = 200) -> Result:
    """`requests_` are raw HTTP requests; each of args.c threads keeps one keep-alive connection."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    position = iter(range(len(requests_)))
    url = urlsplit(args.url)
    host, port, pids = url.hostname or "127.0.0.1", url.port or 80, args.server_pid or []

    def worker() -> None:
        nonlocal errors
        connection = Connection(host, port)
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                break
            started = time.perf_counter()
            try:
                ok = connection.request(requests_[index]) == expect
            except (OSError, ValueError, IndexError):
                connection.close()
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(args.c)]
    cpu_before = cpu_seconds(pids)
    client_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    return Result(name, elapsed, latencies, errors, cpu_seconds(pids) - cpu_before, client_cpu)


class WakeDrain:
    """Empties the worker's channel while the benchmark runs, standing in for the worker.

    Without a consumer the channel fills up after channels-redis's capacity (1000) and every
    later wake fails fast with ChannelFull, which is cheaper than a real send: the figures
    would flatter the server.
    """

    # channels-redis's key: the prefix in settings.CHANNEL_LAYERS + the channel name.
    KEY = "supportbot:channels" + "supportbot-inbound"

    def __init__(self, redis_url: str | None):
        self.client = redis.Redis.from_url(redis_url) if redis_url else None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def __enter__(self):
        if self.client is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.client is not None:
            self.thread.join()

    def _drain(self) -> None:
        drained = 0
        while not self.stop.wait(0.05):
            drained += self.client.zcard(self.KEY)
            self.client.delete(self.KEY)
        if not drained:
            print(f"warning: no wake ever reached {self.KEY}", file=sys.stderr)


def ingest_requests(args, secret: bytes) -> list:
    run_id = uuid.uuid4().hex[:12]
    # New senders every run: no worker answers, so an earlier run's messages stay pending, and a
    # message whose conversation has one pending sends no wake. Within a run a sender's second
    # message finds its first pending, as it would during the worker's debounce window.
    first_sender = random.randrange(10**8 - args.customers)
    url = args.url.rstrip("/") + WEBHOOK_PATH
    out = []
    for index in range(args.n):
        body = webhook_body(index, args.customers, run_id, first_sender)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
        out.append(http_request("POST", url, body, headers))
    return out


def floor_requests(args) -> list:
    return [http_request("GET", args.url.rstrip("/") + FLOOR_PATH, None, {})] * args.n


def line(result: Result) -> str:
    return (
        f"{result.name:8} {result.rps:8.0f} req/s   p50 {result.percentile(50):6.1f} ms   "
        f"p95 {result.percentile(95):6.1f} ms   p99 {result.percentile(99):6.1f} ms   "
        f"errors {result.errors}"
        + (f"   server CPU {result.cpu_ms_per_request:.2f} ms/req" if result.server_cpu else "")
        + f"   client CPU {result.client_cpu_ms_per_request:.2f} ms/req"
    )


def measure(args: argparse.Namespace, secret: bytes) -> tuple[list[Result], list[Result]]:
    """A warm-up, then `args.runs` alternating ingest and floor runs."""
    warm = argparse.Namespace(**{**vars(args), "n": args.warmup})
    run("warmup", ingest_requests(warm, secret) + floor_requests(warm), warm)

    ingests, floors = [], []
    for number in range(1, args.runs + 1):
        ingest = run("ingest", ingest_requests(args, secret), args)
        floor = run("floor", floor_requests(args), args)
        ingests.append(ingest)
        floors.append(floor)
        print(f"run {number}:  n={args.n} c={args.c}")
        print("  " + line(ingest))
        print("  " + line(floor))
        print(f"  ratio ingest/floor req/s: {ingest.rps / floor.rps:.2f}")
    return ingests, floors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("-n", type=int, default=2000, help="requests per measurement")
    parser.add_argument("-c", type=int, default=16, help="concurrency (threads)")
    parser.add_argument("--secret", required=True, help="the server's WHATSAPP_APP_SECRET")
    parser.add_argument("--customers", type=int, default=500, help="distinct senders")
    parser.add_argument("--runs", type=int, default=1, help="repeat both; report medians")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first")
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        help="a local server process (repeat for several): also report their CPU ms per request",
    )
    parser.add_argument(
        "--redis-url",
        help="the server's REDIS_URL: empty the worker's channel during the run (no worker runs)",
    )
    args = parser.parse_args()
    secret = args.secret.encode()

    with WakeDrain(args.redis_url):
        ingests, floors = measure(args, secret)

    def median(results: list[Result], key) -> float:
        return statistics.median(key(r) for r in results)

    if args.runs > 1:
        print(f"\nmedians of {args.runs} runs   {'ingest':>10} {'floor':>10}")
        for label, key in [
            ("req/s", lambda r: r.rps),
            ("p50 ms", lambda r: r.percentile(50)),
            ("p95 ms", lambda r: r.percentile(95)),
            ("p99 ms", lambda r: r.percentile(99)),
            ("server CPU ms/req", lambda r: r.cpu_ms_per_request),
            ("client CPU ms/req", lambda r: r.client_cpu_ms_per_request),
        ]:
            print(f"  {label:20} {median(ingests, key):10.1f} {median(floors, key):10.1f}")
        ratio = median(ingests, lambda r: r.rps) / median(floors, lambda r: r.rps)
        print(f"  {'ratio req/s':20} {ratio:10.2f}")
    p95 = median(ingests, lambda r: r.percentile(95))
    ratio = median(ingests, lambda r: r.rps) / median(floors, lambda r: r.rps)
    print(
        f"\ntargets: ingest p95 < 50 ms: {'met' if p95 < 50 else 'MISSED'} ({p95:.1f} ms); "
        f"ingest >= half the floor's req/s: {'met' if ratio >= 0.5 else 'MISSED'} ({ratio:.2f})"
    )
    errors = sum(r.errors for r in ingests + floors)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
