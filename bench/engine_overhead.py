"""Benchmark (c): the engine's own cost per turn, CRM and LLM time excluded. Prints figures.

    .venv/bin/python bench/engine_overhead.py                      # embedded
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_engine \\
    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/engine_overhead.py

Runs `turn_loop.run_turns` for N conversations with one pending message each (already past the
debounce window), with an instant CRM and LLM, one at a time and then all at once: what is left
is lock, claims, turn record, transcript, sender (console) and the thread hops between them.
Overhead per turn = wall time - (CRM + LLM time recorded on the turn). Target: p95 under 10 ms.
"CPU ms": this process's CPU time per turn (all its threads; not the database's or Redis's).
"""

import argparse
import asyncio
import time
from datetime import timedelta

import engine_common as bench


class InstantLlm:
    calls = 0

    async def __call__(self, request) -> str:
        self.calls += 1
        return "Tudo certo por aqui."


def prepare(n: int) -> list[int]:
    from django.utils import timezone

    from conversations.models import Message

    ids = bench.new_conversations(n)
    for conversation_id in ids:
        bench.store(conversation_id, "minha internet caiu")
    # Past the quiet window: the turn starts at once.
    Message.objects.filter(conversation_id__in=ids).update(
        created_at=timezone.now() - timedelta(seconds=1)
    )
    return ids


def turn_times(ids: list[int]) -> dict[int, tuple[int, int, str]]:
    from conversations.models import Turn

    return {
        t.conversation_id: (t.crm_ms + t.llm_ms, t.total_ms, t.outcome)
        for t in Turn.objects.filter(conversation_id__in=ids)
    }


async def sequential(ids: list[int]) -> list[float]:
    from conversations.engine import turn_loop

    walls = {}
    for conversation_id in ids:
        started = time.perf_counter()
        await turn_loop.run_turns(conversation_id)
        walls[conversation_id] = (time.perf_counter() - started) * 1000
    return walls


async def concurrent(ids: list[int]) -> list[float]:
    """All turns at once: each turn's wall time is mostly waiting for the others' CPU, so the
    figure is the makespan shared out per turn (the engine's throughput on this machine)."""
    from conversations.engine import turn_loop

    started = time.perf_counter()
    await asyncio.gather(*[turn_loop.run_turns(c) for c in ids])
    share = (time.perf_counter() - started) * 1000 / len(ids)
    return dict.fromkeys(ids, share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    mode = bench.setup()
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    from conversations.threads import in_thread

    print(f"engine overhead benchmark ({mode}); instant CRM and LLM")
    print(f"{'':34} {'turns':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'CPU ms':>9}")
    for name, runner, n in (
        ("warm-up", sequential, 20),
        ("one turn at a time", sequential, args.turns),
        (f"{args.concurrency} at once (makespan/turns)", concurrent, args.concurrency),
    ):
        bench.reset_data()
        bench.configure(debounce_quiet_ms=1, debounce_max_wait_ms=1, lock_ttl_seconds=10)
        llm = InstantLlm()
        bench.patch_engine(llm, bench.FakeCrm(low_s=0, high_s=0))
        ids = prepare(n)

        async def go(runner=runner, ids=ids):
            loop = asyncio.get_running_loop()
            loop.set_default_executor(ThreadPoolExecutor(settings.WORKER_THREADS))
            cpu = time.process_time()
            walls = await runner(ids)
            cpu = time.process_time() - cpu
            return walls, cpu, await in_thread(turn_times)(ids)

        walls, cpu, recorded = asyncio.run(go())
        outcomes = {outcome for _, _, outcome in recorded.values()}
        assert outcomes == {"answered"} and len(recorded) == n, (outcomes, len(recorded))
        if runner is concurrent:
            overhead = list(walls.values())  # the fakes are instant: nothing to subtract
        else:
            overhead = [walls[c] - recorded[c][0] for c in ids]
        if name == "warm-up":
            continue
        print(
            f"{name:34} {n:>6} {bench.median(overhead):>8.1f} "
            f"{bench.percentile(overhead, 95):>8.1f} {max(overhead):>8.1f} {cpu * 1000 / n:>9.1f}"
        )


if __name__ == "__main__":
    main()
