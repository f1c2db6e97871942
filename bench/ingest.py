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
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import requests

WEBHOOK_PATH = "/webhooks/whatsapp/"
FLOOR_PATH = "/healthz"


def sign(secret: bytes, body: bytes) -> str:
    # Same as conversations.signature.sign_body; repeated so the script runs without Django.
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_body(index: int, customers: int, run_id: str) -> bytes:
    sender = f"55119{index % customers:08d}"
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


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a local process (Linux /proc), 0 without --server-pid."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float = 0.0  # seconds of the server process's CPU during the run
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


def run(
    name: str, requests_: list, concurrency: int, expect: int, pid: int | None = None
) -> Result:
    """`requests_` are (method, url, body, headers); each thread keeps one keep-alive session."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    position = iter(range(len(requests_)))

    def worker() -> None:
        nonlocal errors
        session = requests.Session()
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                break
            method, url, body, headers = requests_[index]
            started = time.perf_counter()
            try:
                ok = (
                    session.request(method, url, data=body, headers=headers, timeout=30).status_code
                    == expect
                )
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1
        session.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    cpu_before = cpu_seconds(pid)
    client_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    return Result(name, elapsed, latencies, errors, cpu_seconds(pid) - cpu_before, client_cpu)


def ingest_requests(args, secret: bytes) -> list:
    run_id = uuid.uuid4().hex[:12]
    url = args.url.rstrip("/") + WEBHOOK_PATH
    out = []
    for index in range(args.n):
        body = webhook_body(index, args.customers, run_id)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
        out.append(("POST", url, body, headers))
    return out


def floor_requests(args) -> list:
    return [("GET", args.url.rstrip("/") + FLOOR_PATH, None, {})] * args.n


def line(result: Result) -> str:
    return (
        f"{result.name:8} {result.rps:8.0f} req/s   p50 {result.percentile(50):6.1f} ms   "
        f"p95 {result.percentile(95):6.1f} ms   p99 {result.percentile(99):6.1f} ms   "
        f"errors {result.errors}"
        + (f"   server CPU {result.cpu_ms_per_request:.2f} ms/req" if result.server_cpu else "")
        + f"   client CPU {result.client_cpu_ms_per_request:.2f} ms/req"
    )


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
        "--server-pid", type=int, help="local server process: also report its CPU ms per request"
    )
    args = parser.parse_args()
    secret = args.secret.encode()

    warm = argparse.Namespace(**{**vars(args), "n": args.warmup})
    run("warmup", ingest_requests(warm, secret) + floor_requests(warm), args.c, 200)

    ingests, floors = [], []
    for number in range(1, args.runs + 1):
        ingest = run("ingest", ingest_requests(args, secret), args.c, 200, args.server_pid)
        floor = run("floor", floor_requests(args), args.c, 200, args.server_pid)
        ingests.append(ingest)
        floors.append(floor)
        print(f"run {number}:  n={args.n} c={args.c}")
        print("  " + line(ingest))
        print("  " + line(floor))
        print(f"  ratio ingest/floor req/s: {ingest.rps / floor.rps:.2f}")

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
