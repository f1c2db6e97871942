"""Benchmark (b): 200 customers send bursts of 1-5 messages at once, through ONE worker process
(this one: the real channels Worker and InboundWorker on its event loop). Prints figures.

    .venv/bin/python bench/engine_scale.py                         # embedded
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_engine \\
    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/engine_scale.py

Scaled 1:100 by default (--scale N): CRM 80-100 ms (blocking, in a thread), LLM 150-200 ms,
debounce quiet 20 ms (max 80 ms); messages of a burst 5 ms apart, customers starting within
50 ms. The floor is one CRM+LLM time for everyone in parallel plus the quiet window (285 ms at
1:100): the target makespan is within 2x of it. Scaling divides the waiting by 100 but not the
CPU each turn costs, so at 1:100 one process's CPU is the limit; --scale 10 shows the same run
with waits closer to real ones.

Blocking CRM calls run on the worker's thread pool (WORKER_THREADS, default 32), so with more
customers than threads they would queue; the engine runs them on a pool sized WORKER_MAX_TURNS.
"""

import argparse
import asyncio
import os
import random
import sys
import time

import engine_common as bench

BURST_GAP_S_REAL = 0.5  # messages of a burst, 0.5 s apart in real time


# The webhook side stores and wakes with this much concurrency (a web server's worth), not
# 600 at once: it shares this process and its channel-layer connections with the worker.
WEBHOOK_CONCURRENCY = 64


async def customer(
    conversation_id: int, burst: int, offset_s: float, sent_at: dict, webhook: asyncio.Semaphore
) -> None:
    from conversations import events
    from conversations.claims import in_thread

    await asyncio.sleep(offset_s)
    for n in range(burst):
        async with webhook:
            await in_thread(bench.store)(conversation_id, f"mensagem {n + 1} de {burst}")
            sent_at[conversation_id] = time.monotonic()
            await events.asend_wake(conversation_id)
        await asyncio.sleep(BURST_GAP_S_REAL / SCALE)


def reply_times(ids: list[int]) -> dict[int, list]:
    from conversations.models import Message

    rows = Message.objects.filter(
        conversation_id__in=ids, direction=Message.Direction.OUTBOUND
    ).values_list("conversation_id", "created_at", "kind")
    out: dict[int, list] = {}
    for conversation_id, created_at, kind in rows:
        out.setdefault(conversation_id, []).append((created_at, kind))
    return out


SCALE = 100


def backlog(ids: list[int]) -> dict:
    from django.db.models import Count

    from conversations.models import Message

    rows = (
        Message.objects.filter(conversation_id__in=ids, direction=Message.Direction.INBOUND)
        .values("state")
        .annotate(n=Count("id"))
    )
    return {row["state"]: row["n"] for row in rows}


async def run(ids: list[int], bursts: list[int], offsets: list[float]):
    from django.utils import timezone

    from conversations.claims import in_thread
    from conversations.models import Message

    llm = bench.FakeLlm(15 / SCALE, 20 / SCALE)
    crm = bench.FakeCrm(8 / SCALE, 10 / SCALE)
    bench.patch_engine(llm, crm)
    sent_at: dict[int, float] = {}
    async with bench.InProcessWorker():
        wall_start, db_start = time.monotonic(), timezone.now()
        webhook = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        await asyncio.gather(
            *[
                customer(c, b, o, sent_at, webhook)
                for c, b, o in zip(ids, bursts, offsets, strict=True)
            ]
        )

        def settled() -> bool:
            return not Message.objects.filter(
                conversation_id__in=ids,
                direction=Message.Direction.INBOUND,
                state__in=[Message.State.PENDING, Message.State.PROCESSING],
            ).exists()

        reported = time.monotonic()
        while not await in_thread(settled)():
            if time.monotonic() - wall_start > 120:
                raise SystemExit("messages still pending after 120 s")
            if time.monotonic() - reported > 5:
                reported = time.monotonic()
                print("  still waiting:", await in_thread(backlog)(ids), file=sys.stderr)
            await asyncio.sleep(0.01)
    replies = await in_thread(reply_times)(ids)
    # Reply latency: from the customer's last message to the last reply it got (wall clock,
    # both sides in this process; DB timestamps are only used for the makespan's end).
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
        "makespan": makespan,
        "latencies": latencies,
        "llm_calls": llm.calls,
        "replies": sum(len(items) for items in replies.values()),
        "errors": errors,
        "unanswered": len(ids) - len(replies),
    }


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
    args = parser.parse_args()
    global SCALE
    SCALE = args.scale
    mode = bench.setup()
    from django.conf import settings

    random.seed(args.seed)
    bursts = [random.randint(1, 5) for _ in range(args.customers)]
    offsets = [random.uniform(0, 5 / SCALE) for _ in range(args.customers)]
    messages = sum(bursts)
    quiet_ms, max_wait_ms = 2000 // SCALE, 8000 // SCALE
    print(f"engine scale benchmark ({mode}); one worker process; time scaled 1:{SCALE}")
    print(f"machine: {os.cpu_count()} CPUs")
    print(f"{args.customers} customers, {messages} messages in bursts of 1-5")
    print(
        "floor: the last message sent + quiet window + one CRM+LLM time "
        f"({(2 + 9 + 17.5) / SCALE * 1000:.0f} ms); target makespan <= 2x floor"
    )
    header = f"{'threads':>8} {'floor':>8} {'makespan':>10} {'x floor':>8} {'p50 reply':>10}"
    header += f" {'p95 reply':>10}"
    print(header + f" {'LLM/msg':>8} {'replies':>8} {'errors':>7} {'unanswered':>10}")
    for threads in [int(t) for t in args.threads.split(",")]:
        settings.WORKER_THREADS = threads
        os.environ["WORKER_THREADS"] = str(threads)
        bench.reset_data()
        bench.configure(
            debounce_quiet_ms=quiet_ms,
            debounce_max_wait_ms=max_wait_ms,
            lock_ttl_seconds=120,
            supersede_enabled=True,
            supersede_cap=2,
        )
        ids = bench.new_conversations(args.customers)
        cpu = time.process_time()
        result = asyncio.run(run(ids, bursts, offsets))
        result["cpu"] = time.process_time() - cpu
        lat = result["latencies"]
        print(
            f"{threads:>8} {result['floor'] * 1000:>6.0f}ms {result['makespan'] * 1000:>8.0f}ms"
            f" {result['makespan'] / result['floor']:>8.2f}"
            f" {bench.median(lat) * 1000:>8.0f}ms {bench.percentile(lat, 95) * 1000:>8.0f}ms"
            f" {result['llm_calls'] / messages:>8.2f} {result['replies']:>8} {result['errors']:>7}"
            f" {result['unanswered']:>10} cpu {result['cpu']:.1f}s"
        )


if __name__ == "__main__":
    main()
