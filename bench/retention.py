"""Retention benchmark: fill PostgreSQL with old messages, then run the retention pass until it
is done, timing every batch. Run bench/ingest.py against a server on the same database while the
pass runs to see what it does to ingest (BENCHMARKS.md "Retention").

    DATABASE_URL=postgresql://... python bench/retention.py fill --messages 1000000 --days 365
    DATABASE_URL=postgresql://... python bench/retention.py purge

`fill` adds closed conversations of 10,000 bench customers and N inbound messages spread evenly
over the last `--days` days (so with the default 180-day retention about half are due).
`purge` prints rows erased, batches, seconds, rows/s and the batch times (p50, p95, max).
Nothing is asserted here.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from conversations.privacy import retention  # noqa: E402

CUSTOMERS = 10_000

FILL_CUSTOMERS_SQL = """
INSERT INTO conversations_customer
    (wa_id, reply_wa_id, profile_name, document, first_seen_at, last_seen_at)
SELECT '5599' || lpad(g::text, 9, '0'), '', 'Bench ' || g, '', now(), now()
FROM generate_series(1, %s) g ON CONFLICT (wa_id) DO NOTHING
"""
FILL_CONVERSATIONS_SQL = """
INSERT INTO conversations_conversation
    (customer_id, status, handler, handoff_reason, handoff_source, created_at, updated_at)
SELECT id, 'closed', 'bot', '', '', now(), now() FROM conversations_customer
WHERE wa_id LIKE '5599%%'
"""
FILL_MESSAGES_SQL = """
WITH conv AS (SELECT array_agg(c.id) AS ids FROM conversations_conversation c
              JOIN conversations_customer cu ON cu.id = c.customer_id
              WHERE cu.wa_id LIKE '5599%%')
INSERT INTO conversations_message
    (conversation_id, direction, provider_id, type, text, transcript, media_file, raw, state,
     failure_reason, kind, delivery_status, delivery_errors, sent_at, created_at, updated_at,
     media_attempts, media_error, media_id, media_mime_type, media_sha256, media_status)
SELECT conv.ids[1 + g %% array_length(conv.ids, 1)], 'in', 'wamid.FILL.' || %s || '.' || g,
       'text', 'mensagem antiga ' || g || ': minha internet caiu de novo, podem verificar?', '',
       '', jsonb_build_object('from', '5599', 'text', jsonb_build_object('body', 'x' || g)),
       'answered', '', '', '', '[]'::jsonb, t, t, t, 0, '', '', '', '', ''
FROM conv, generate_series(%s, %s) g,
     LATERAL (SELECT now() - (g::float / %s) * (%s * interval '1 day') AS t) at
"""


def fill(args) -> None:
    started = time.perf_counter()
    tag = str(int(time.time()))
    with connection.cursor() as cursor:
        cursor.execute(FILL_CUSTOMERS_SQL, [CUSTOMERS])
        cursor.execute(
            "SELECT count(*) FROM conversations_conversation c JOIN conversations_customer cu"
            " ON cu.id = c.customer_id WHERE cu.wa_id LIKE '5599%%'"
        )
        if cursor.fetchone()[0] == 0:
            cursor.execute(FILL_CONVERSATIONS_SQL)
        step = 100_000
        for first in range(1, args.messages + 1, step):
            last = min(args.messages, first + step - 1)
            cursor.execute(FILL_MESSAGES_SQL, [tag, first, last, args.messages, args.days])
            print(f"  {last} messages", flush=True)
        cursor.execute("ANALYZE conversations_message")
        cursor.execute("SELECT count(*) FROM conversations_message")
        total = cursor.fetchone()[0]
    print(f"filled in {time.perf_counter() - started:.1f} s; {total} messages in the table")


def purge(args) -> None:
    content_cutoff, _ = retention.cutoffs()
    timings: list[float] = []
    erased = 0
    after = None
    started = time.perf_counter()
    while True:
        batch_started = time.perf_counter()
        done, after = retention.content_batch(content_cutoff, after)
        if not done:
            break
        timings.append((time.perf_counter() - batch_started) * 1000)
        erased += done
        if args.pause_ms:
            time.sleep(args.pause_ms / 1000)
    seconds = time.perf_counter() - started
    timings.sort()
    print(f"cutoff {content_cutoff:%Y-%m-%d}, batch size {retention.BATCH_SIZE}")
    print(f"erased {erased} messages in {len(timings)} batches, {seconds:.1f} s", end="")
    print(f" ({erased / seconds:.0f} rows/s)" if seconds else "")
    if timings:
        p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
        print(
            f"batch ms: p50 {statistics.median(timings):.1f}, p95 {p95:.1f}, max {timings[-1]:.1f}"
        )
    print(f"finished {timezone.now():%H:%M:%S}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    filling = sub.add_parser("fill")
    filling.add_argument("--messages", type=int, default=1_000_000)
    filling.add_argument("--days", type=int, default=365)
    purging = sub.add_parser("purge")
    purging.add_argument("--pause-ms", type=int, default=0, help="sleep between batches")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    {"fill": fill, "purge": purge}[args.command](args)


if __name__ == "__main__":
    main()
