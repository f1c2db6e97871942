"""Benchmark (b): 200 customers send bursts of 1-5 messages at once, through ONE worker process
(this one: the real channels Worker and InboundWorker on its event loop). Prints figures.

    .venv/bin/python bench/engine_scale.py                         # embedded
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_engine \\
    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/engine_scale.py

Scaled 1:100: CRM 80-100 ms (blocking, in a worker thread), LLM 150-200 ms, debounce quiet
20 ms (max 80 ms); messages of a burst 5 ms apart, customers starting within 50 ms. The floor
is one CRM+LLM time for everyone in parallel (~265 ms) plus the quiet window: the target
makespan is within 2x of it.

Blocking CRM calls run on the worker's thread pool (WORKER_THREADS, default 32), so with more
customers than threads they queue: the run is repeated with a pool of 256.
"""

import argparse
import asyncio
import os
import random
import time

import engine_common as bench

SCALE = 100
BURST_GAP_S = 0.005


async def customer(conversation_id: int, burst: int, offset_s: float, sent_at: dict) -> None:
    from conversations import events
    from conversations.claims import in_thread

    await asyncio.sleep(offset_s)
    for n in range(burst):
        await in_thread(bench.store)(conversation_id, f"mensagem {n + 1} de {burst}")
        sent_at[conversation_id] = time.monotonic()
        await events.asend_wake(conversation_id)
        await asyncio.sleep(BURST_GAP_S)


def reply_times(ids: list[int]) -> dict[int, list]:
    from conversations.models import Message

    rows = Message.objects.filter(
        conversation_id__in=ids, direction=Message.Direction.OUTBOUND
    ).values_list("conversation_id", "created_at", "kind")
    out: dict[int, list] = {}
    for conversation_id, created_at, kind in rows:
        out.setdefault(conversation_id, []).append((created_at, kind))
    return out


async def run(ids: list[int], bursts: list[int], offsets: list[float]):
    from django.utils import timezone

    from conversations.claims import in_thread
    from conversations.models import Message

    llm, crm = bench.FakeLlm(), bench.FakeCrm()
    bench.patch_engine(llm, crm)
    sent_at: dict[int, float] = {}
    async with bench.InProcessWorker():
        wall_start, db_start = time.monotonic(), timezone.now()
        await asyncio.gather(
            *[customer(c, b, o, sent_at) for c, b, o in zip(ids, bursts, offsets, strict=True)]
        )

        def settled() -> bool:
            return not Message.objects.filter(
                conversation_id__in=ids,
                direction=Message.Direction.INBOUND,
                state__in=[Message.State.PENDING, Message.State.PROCESSING],
            ).exists()

        while not await in_thread(settled)():
            if time.monotonic() - wall_start > 120:
                raise SystemExit("messages still pending after 120 s")
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
    return {
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
        "--threads", default="32,256", help="worker thread pools to try (WORKER_THREADS)"
    )
    args = parser.parse_args()
    mode = bench.setup()
    from django.conf import settings

    random.seed(args.seed)
    bursts = [random.randint(1, 5) for _ in range(args.customers)]
    offsets = [random.uniform(0, 0.05) for _ in range(args.customers)]
    messages = sum(bursts)
    floor = 0.09 + 0.175 + bench.SCALED["debounce_quiet_ms"] / 1000
    print(f"engine scale benchmark ({mode}); one worker process; time scaled 1:{SCALE}")
    print(f"{args.customers} customers, {messages} messages in bursts of 1-5")
    print(f"floor: one CRM+LLM time + quiet window = {floor * 1000:.0f} ms; target <= 2x")
    header = f"{'threads':>8} {'makespan':>10} {'x floor':>8} {'p50 reply':>10} {'p95 reply':>10}"
    print(header + f" {'LLM/msg':>8} {'replies':>8} {'errors':>7} {'unanswered':>10}")
    for threads in [int(t) for t in args.threads.split(",")]:
        settings.WORKER_THREADS = threads
        os.environ["WORKER_THREADS"] = str(threads)
        bench.reset_data()
        bench.configure(**bench.SCALED, supersede_enabled=True, supersede_cap=2)
        ids = bench.new_conversations(args.customers)
        cpu = time.process_time()
        result = asyncio.run(run(ids, bursts, offsets))
        result["cpu"] = time.process_time() - cpu
        lat = result["latencies"]
        print(
            f"{threads:>8} {result['makespan'] * 1000:>8.0f}ms {result['makespan'] / floor:>8.2f}"
            f" {bench.median(lat) * 1000:>8.0f}ms {bench.percentile(lat, 95) * 1000:>8.0f}ms"
            f" {result['llm_calls'] / messages:>8.2f} {result['replies']:>8} {result['errors']:>7}"
            f" {result['unanswered']:>10} cpu {result['cpu']:.1f}s"
        )


if __name__ == "__main__":
    main()
