"""What building an index on a full message table does to the writes meanwhile: a plain CREATE
INDEX against CREATE INDEX CONCURRENTLY (what migrations 0002 and 0012 use on PostgreSQL), run
alternately on the same table while a writer stores one message after another, as ingest does.

    DATABASE_URL=postgresql://... python bench/retention.py fill --messages 1000000 --days 365
    DATABASE_URL=postgresql://... python bench/index_build.py --runs 2

For each build it prints its time, how many messages the writer stored during it, and the
writer's slowest store and p99 (ms). Nothing is asserted here.
"""

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from conversations.models import Conversation, Message  # noqa: E402

INDEX = "bench_message_created"
COLUMNS = "created_at, direction, kind"  # the dashboard's index (0012's message_created)


class Writer(threading.Thread):
    """Stores messages one at a time until stopped; keeps (start, seconds) of each store."""

    def __init__(self, conversation_id: int):
        super().__init__(daemon=True)
        self.conversation_id = conversation_id
        self.stores: list[tuple[float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                started = time.perf_counter()
                Message.objects.create(
                    conversation_id=self.conversation_id,
                    direction=Message.Direction.INBOUND,
                    provider_id=f"bench.{uuid.uuid4().hex}",
                    text="bench",
                    state=Message.State.ANSWERED,
                )
                self.stores.append((started, time.perf_counter() - started))
        finally:
            connection.close()


def build(concurrently: bool, conversation_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    writer = Writer(conversation_id)
    writer.start()
    time.sleep(1.0)
    how = "CONCURRENTLY " if concurrently else ""
    started = time.perf_counter()
    with connection.cursor() as cursor:  # autocommit: CONCURRENTLY cannot run in a transaction
        cursor.execute(f"CREATE INDEX {how}{INDEX} ON conversations_message ({COLUMNS})")
    ended = time.perf_counter()
    time.sleep(1.0)
    writer.stopping.set()
    writer.join()
    during = [
        seconds for start, seconds in writer.stores if start + seconds >= started and start <= ended
    ]
    during.sort()
    return {
        "build_s": ended - started,
        "stored": len(during),
        "max_ms": 1000 * during[-1] if during else 0.0,
        "p99_ms": 1000 * during[int(0.99 * (len(during) - 1))] if during else 0.0,
        "median_ms": 1000 * statistics.median(during) if during else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="builds of each kind, alternating")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/index_build.py needs DATABASE_URL on PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversations_message")
        print(f"{cursor.fetchone()[0]} messages in the table")
    conversation_id = Conversation.objects.values_list("pk", flat=True).first()
    for run in range(1, args.runs + 1):
        for concurrently in (False, True):
            figures = build(concurrently, conversation_id)
            kind = "CONCURRENTLY" if concurrently else "plain       "
            print(
                f"run {run} {kind}: build {figures['build_s']:.1f} s, {figures['stored']} stored"
                f" meanwhile, store median {figures['median_ms']:.1f} ms,"
                f" p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.0f} ms",
                flush=True,
            )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        cursor.execute("DELETE FROM conversations_message WHERE provider_id LIKE 'bench.%%'")


if __name__ == "__main__":
    main()
