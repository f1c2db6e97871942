"""Benchmark (b): 200 customers send bursts of 1-5 messages at once, through ONE worker process.
Prints figures.

    .venv/bin/python bench/engine_scale.py                         # embedded
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_engine \\
    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/engine_scale.py
    ... bench/engine_scale.py --web-side-only    # the web side's stores and wakes, no worker

What runs where, with PostgreSQL and Redis (all on this machine's cores):
- the worker is a process of its own, bench/engine_worker.py: `runworker supportbot-inbound`
  with the fake CRM and LLM below. It is the one worker process measured: the makespan, and its
  CPU time (user + system, all its threads) from the first message to the last reply.
  Also printed for that window: this process's CPU ("producer"), PostgreSQL's and Redis's, and
  the whole machine's busy CPU ("all": every process; at most cores x makespan).
- this process plays the web side, as daphne does in production: on the planned schedule it
  stores each message as the webhook does (conversations.webhook.ingest: a pending row) and sends the
  wake that asks for through the channel layer (none while an earlier message of the
  conversation is pending), then polls the database every 25 ms until every message is settled. The makespan and latencies come from
  the reply rows' timestamps, not from the poll.
Embedded mode has no channel layer between processes (in-process layer, fakeredis): there the
worker runs in this process next to the producer, and the CPU figure covers both.

"last sent": when the producer actually stored the last message (planned: floor minus 285 ms at
1:100); when this machine's cores are busy the producer falls behind its plan, and the makespan
with it.

Before each measured run a warm-up conversation gets one message answered, so the worker has
imported everything and opened its connections, as a running worker has.

Scaled 1:100 by default (--scale N): CRM 80-100 ms (blocking, in a thread), LLM 150-200 ms,
debounce quiet 20 ms (max 80 ms); messages of a burst 5 ms apart, customers starting within
50 ms. The floor is the last planned message plus one quiet window and one CRM+LLM time for
everyone in parallel (354 ms at 1:100): the target makespan is within 2x of it. Scaling divides
the waiting by 100 but not the CPU each message and turn costs, so at 1:100 CPU is the limit: the
worker's, and on one machine also the producer's, PostgreSQL's and Redis's, on the same cores.
--scale 10 shows the same run with waits closer to real ones.
"""

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import engine_common as bench

BURST_GAP_S_REAL = 0.5  # messages of a burst, 0.5 s apart in real time
# The web side stores and wakes with this much concurrency (a web server's worth), not 600 at once.
WEBHOOK_CONCURRENCY = 64
POLL_S = 0.025
SCALE = 100


async def customer(
    conversation_id: int,
    burst: int,
    offset_s: float,
    sent_at: dict,
    webhook: asyncio.Semaphore,
    wakes: list | None = None,
) -> None:
    from conversations import events
    from conversations.threads import in_thread

    wa_id = bench.wa_id_of(conversation_id)
    await asyncio.sleep(offset_s)
    for n in range(burst):
        async with webhook:
            to_wake = await in_thread(bench.deliver)(wa_id, f"mensagem {n + 1} de {burst}")
            sent_at[conversation_id] = time.monotonic()
            for woken in to_wake:
                await events.asend_wake(woken)
            if wakes is not None:
                wakes.append(len(to_wake))
        await asyncio.sleep(BURST_GAP_S_REAL / SCALE)


def unsettled(ids: list[int]) -> dict:
    """Inbound messages of these conversations still pending or claimed, by state."""
    from django.db.models import Count

    from conversations.models import Message

    rows = (
        Message.objects.filter(
            conversation_id__in=ids,
            direction=Message.Direction.INBOUND,
            state__in=[Message.State.PENDING, Message.State.PROCESSING],
        )
        .values("state")
        .annotate(n=Count("id"))
    )
    return {row["state"]: row["n"] for row in rows}


def any_unsettled(ids: list[int]) -> bool:
    from conversations.models import Message

    return Message.objects.filter(
        conversation_id__in=ids,
        direction=Message.Direction.INBOUND,
        state__in=[Message.State.PENDING, Message.State.PROCESSING],
    ).exists()


async def wait_settled(ids: list[int], timeout_s: float = 120) -> None:
    from conversations.threads import in_thread

    started = reported = time.monotonic()
    while await in_thread(any_unsettled)(ids):
        if time.monotonic() - started > timeout_s:
            backlog = await in_thread(unsettled)(ids)
            raise SystemExit(f"messages still unsettled after {timeout_s} s: {backlog}")
        if time.monotonic() - reported > 5:
            reported = time.monotonic()
            print("  still waiting:", await in_thread(unsettled)(ids), file=sys.stderr)
        await asyncio.sleep(POLL_S)


def reply_times(ids: list[int]) -> dict[int, list]:
    from conversations.models import Message

    rows = Message.objects.filter(
        conversation_id__in=ids, direction=Message.Direction.OUTBOUND
    ).values_list("conversation_id", "created_at", "kind")
    out: dict[int, list] = {}
    for conversation_id, created_at, kind in rows:
        out.setdefault(conversation_id, []).append((created_at, kind))
    return out


def turn_count(ids: list[int]) -> int:
    from conversations.models import Turn

    return Turn.objects.filter(conversation_id__in=ids).count()


def llm_calls_of(conversation_id: int) -> int:
    """A turn calls the LLM once, and once more per supersede."""
    from conversations.models import Turn

    return sum(1 + t.supersede_count for t in Turn.objects.filter(conversation_id=conversation_id))


def machine_busy_cpu_s() -> float:
    """CPU seconds all cores spent not idle since boot (Linux /proc/stat): every process here,
    the database and Redis included."""
    with open("/proc/stat") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        return _cpu_s(stat.read())


def _cpu_s(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVICES = ("postgres", "redis-server")


def services_cpu_s() -> dict[str, float]:
    """CPU seconds so far of every PostgreSQL and Redis process on this machine, by name.
    Processes that start and end between two readings are missed (the connection pools keep
    theirs for the whole run)."""
    totals = dict.fromkeys(SERVICES, 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:  # gone meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in totals:
            totals[name] += _cpu_s(text)
    return totals


class Worker:
    """The measured worker: its CPU clock, and its LLM calls once stopped."""

    cpu_s = None  # () -> CPU seconds so far
    llm_calls = 0


@contextlib.asynccontextmanager
async def worker_process(threads: int):
    """bench/engine_worker.py in a process of its own, stopped with SIGTERM afterwards."""
    proc = subprocess.Popen(
        [sys.executable, str(bench.ROOT / "bench" / "engine_worker.py"), "--scale", str(SCALE)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "WORKER_THREADS": str(threads)},
    )
    worker = Worker()
    try:
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        if line.strip() != "ready":
            raise SystemExit(f"the worker process did not start: {line!r}")
        worker.cpu_s = lambda: process_cpu_s(proc.pid)
        yield worker
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.get_running_loop().run_in_executor(None, proc.communicate)
    calls = [line.split()[1] for line in out.splitlines() if line.startswith("llm_calls ")]
    worker.llm_calls = int(calls[0]) if calls else 0


@contextlib.asynccontextmanager
async def worker_in_this_process(threads: int):
    from django.conf import settings

    settings.WORKER_THREADS = threads
    llm = bench.FakeLlm(15 / SCALE, 20 / SCALE)
    bench.patch_engine(llm, bench.FakeCrm(8 / SCALE, 10 / SCALE))
    worker = Worker()
    worker.cpu_s = time.process_time
    async with bench.InProcessWorker():
        yield worker
    worker.llm_calls = llm.calls


async def run(ids: list[int], warm_id: int, bursts, offsets, threads: int, own_process: bool):
    from channels.layers import get_channel_layer
    from django.utils import timezone

    from conversations.threads import in_thread

    if own_process:
        await get_channel_layer().flush()  # no wake left over from an earlier run
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(WEBHOOK_CONCURRENCY))
    sent_at: dict[int, float] = {}
    wakes: list[int] = []
    webhook = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
    start_worker = worker_process if own_process else worker_in_this_process
    async with start_worker(threads) as worker:
        await customer(warm_id, 1, 0, {}, webhook)
        await wait_settled([warm_id])
        services_start = services_cpu_s()
        cpu_start, own_start, busy_start = worker.cpu_s(), time.process_time(), machine_busy_cpu_s()
        wall_start, db_start = time.monotonic(), timezone.now()
        await asyncio.gather(
            *[
                customer(c, b, o, sent_at, webhook, wakes)
                for c, b, o in zip(ids, bursts, offsets, strict=True)
            ]
        )
        await wait_settled(ids)
        cpu = worker.cpu_s() - cpu_start
        own_cpu = time.process_time() - own_start
        busy = machine_busy_cpu_s() - busy_start
        services = {k: v - services_start[k] for k, v in services_cpu_s().items()}
    replies = await in_thread(reply_times)(ids)
    # Reply latency: from the customer's last message to the last reply it got (the producer's
    # clock for the message, the reply row's timestamp for the reply: one machine, one clock).
    last_reply = {c: max(t for t, _ in items) for c, items in replies.items()}
    makespan = (max(last_reply.values()) - db_start).total_seconds()
    latencies = []
    for c in ids:
        reply_at = (last_reply[c] - db_start).total_seconds()
        latencies.append(reply_at - (sent_at[c] - wall_start))
    errors = sum(1 for items in replies.values() for _, kind in items if kind != "reply")
    # The floor: the last message as planned, then one quiet window and one CRM+LLM time.
    last_planned = max(
        o + (b - 1) * BURST_GAP_S_REAL / SCALE for b, o in zip(bursts, offsets, strict=True)
    )
    return {
        "floor": last_planned + (2 + 9 + 17.5) / SCALE,
        "last_sent": max(sent_at.values()) - wall_start,
        "makespan": makespan,
        "latencies": latencies,
        "llm_calls": worker.llm_calls - await in_thread(llm_calls_of)(warm_id),
        "replies": sum(len(items) for items in replies.values()),
        "wakes": sum(wakes),
        "errors": errors,
        "unanswered": len(ids) - len(replies),
        "cpu": cpu,
        "producer_cpu": own_cpu if own_process else float("nan"),
        "busy": busy,
        "services": services,
        "turns": await in_thread(turn_count)(ids),
    }


async def web_side_only(ids: list[int], warm_id: int, bursts, offsets) -> dict:
    """The web side alone: the same stores and wakes on the same schedule, with no worker. When
    it stores its last message after 2x floor minus one quiet window and one CRM+LLM time, no
    worker on this machine can meet the target: even one that cost nothing would finish later."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    await layer.flush()
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(WEBHOOK_CONCURRENCY))
    webhook = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
    sent_at: dict[int, float] = {}
    await customer(warm_id, 1, 0, {}, webhook)
    services_start = services_cpu_s()
    own_start, busy_start, wall_start = time.process_time(), machine_busy_cpu_s(), time.monotonic()
    await asyncio.gather(
        *[customer(c, b, o, sent_at, webhook) for c, b, o in zip(ids, bursts, offsets, strict=True)]
    )
    result = {
        "last_sent": max(sent_at.values()) - wall_start,
        "producer_cpu": time.process_time() - own_start,
        "busy": machine_busy_cpu_s() - busy_start,
        "services": {k: v - services_start[k] for k, v in services_cpu_s().items()},
    }
    await layer.flush()  # no worker will take these wakes
    return result


def print_web_side_only(args, bursts, offsets) -> None:
    tail = (2 + 9 + 17.5) / SCALE  # one quiet window and one CRM+LLM time
    last_planned = max(
        o + (b - 1) * BURST_GAP_S_REAL / SCALE for b, o in zip(bursts, offsets, strict=True)
    )
    target = 2 * (last_planned + tail)
    print(
        f"web side only (no worker): stores must end by {(target - tail) * 1000:.0f} ms for a"
        f" makespan within 2x floor ({target * 1000:.0f} ms); last planned at"
        f" {last_planned * 1000:.0f} ms"
    )
    print(f"{'last sent':>10} {'web side CPU':>13} {'PostgreSQL':>11} {'Redis':>6} {'all CPU':>8}")
    for _ in range(args.runs):
        bench.reset_data()
        *ids, warm_id = bench.new_conversations(args.customers + 1)
        result = asyncio.run(web_side_only(ids, warm_id, bursts, offsets))
        print(
            f"{result['last_sent'] * 1000:>8.0f}ms {result['producer_cpu']:>12.2f}s"
            f" {result['services']['postgres']:>10.2f}s"
            f" {result['services']['redis-server']:>5.2f}s {result['busy']:>7.2f}s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scale", type=int, default=100, help="time scale 1:N (CRM 8-10 s, LLM 15-20 s real)"
    )
    parser.add_argument(
        "--threads", default="32", help="worker thread pools to try (WORKER_THREADS)"
    )
    parser.add_argument(
        "--web-side-only",
        action="store_true",
        help="no worker: time the web side's stores and wakes alone (PostgreSQL and Redis only)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of --web-side-only")
    args = parser.parse_args()
    global SCALE
    SCALE = args.scale
    mode = bench.setup()
    from django.conf import settings

    own_process = not settings.EMBEDDED
    random.seed(args.seed)
    bursts = [random.randint(1, 5) for _ in range(args.customers)]
    offsets = [random.uniform(0, 5 / SCALE) for _ in range(args.customers)]
    if args.web_side_only:
        if not own_process:
            raise SystemExit("--web-side-only needs DATABASE_URL and REDIS_URL (PostgreSQL, Redis)")
        print_web_side_only(args, bursts, offsets)
        return
    messages = sum(bursts)
    quiet_ms, max_wait_ms = 2000 // SCALE, 8000 // SCALE
    where = "its own process" if own_process else "this process, with the producer"
    print(f"engine scale benchmark ({mode}); one worker process ({where}); time scaled 1:{SCALE}")
    print(f"machine: {os.cpu_count()} CPUs")
    print(f"{args.customers} customers, {messages} messages in bursts of 1-5")
    print(
        "floor: the last message sent + quiet window + one CRM+LLM time "
        f"({(2 + 9 + 17.5) / SCALE * 1000:.0f} ms); target makespan <= 2x floor"
    )
    header = f"{'threads':>8} {'floor':>8} {'last sent':>10} {'makespan':>10} {'x floor':>8}"
    header += f" {'p50 reply':>10}"
    header += f" {'p95 reply':>10} {'LLM/msg':>8} {'wakes':>6}"
    header += f" {'replies':>8} {'errors':>7} {'unanswered':>10}"
    header += f" {'worker CPU':>11} {'per turn':>9} {'producer CPU':>13}"
    print(header + f" {'PostgreSQL':>11} {'Redis':>6} {'all CPU':>8}")
    for threads in [int(t) for t in args.threads.split(",")]:
        bench.reset_data()
        bench.configure(
            debounce_quiet_ms=quiet_ms,
            debounce_max_wait_ms=max_wait_ms,
            lock_ttl_seconds=120,
            supersede_enabled=True,
            supersede_cap=2,
        )
        *ids, warm_id = bench.new_conversations(args.customers + 1)
        result = asyncio.run(run(ids, warm_id, bursts, offsets, threads, own_process))
        lat = result["latencies"]
        print(
            f"{threads:>8} {result['floor'] * 1000:>6.0f}ms {result['last_sent'] * 1000:>8.0f}ms"
            f" {result['makespan'] * 1000:>8.0f}ms"
            f" {result['makespan'] / result['floor']:>8.2f}"
            f" {bench.median(lat) * 1000:>8.0f}ms {bench.percentile(lat, 95) * 1000:>8.0f}ms"
            f" {result['llm_calls'] / messages:>8.2f} {result['wakes']:>6}"
            f" {result['replies']:>8} {result['errors']:>7}"
            f" {result['unanswered']:>10} {result['cpu']:>10.2f}s"
            f" {result['cpu'] * 1000 / max(1, result['turns']):>7.1f}ms"
            f" {result['producer_cpu']:>12.2f}s {result['services']['postgres']:>10.2f}s"
            f" {result['services']['redis-server']:>5.2f}s {result['busy']:>7.2f}s"
        )


if __name__ == "__main__":
    main()
