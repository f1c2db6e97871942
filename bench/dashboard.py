"""Dashboard benchmark (issue 14): fills a PostgreSQL database with 1 million messages and 300
thousand turns over 30 days, then times the dashboard's figures and the whole admin page for each
period: cold (no hourly rollup in Redis yet) and warm (settled hours read from Redis). Prints
figures; asserts nothing. Target: the page renders in under 1 s.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/h14 REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/dashboard.py [--runs 5] [--refill]

Use a database of your own: it is migrated, and its conversations, customers, messages and
turns are replaced by the generated ones (once; --refill generates them again).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1")
if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    sys.exit("Set DATABASE_URL to a PostgreSQL database of your own (it is filled with data)")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from conversations.models import HourlyRollup, Message, Turn  # noqa: E402
from conversations.staff import reports  # noqa: E402

MESSAGES = 1_000_000
TURNS = 300_000
CONVERSATIONS = 60_000
DAYS = 30

FILL_SQL = [
    "TRUNCATE conversations_message, conversations_turn, conversations_conversation,"
    " conversations_customer RESTART IDENTITY CASCADE",
    # One customer and one conversation each; a third handed over, half of those answered by
    # staff, 40% closed.
    f"""INSERT INTO conversations_customer
        (wa_id, reply_wa_id, profile_name, document, first_seen_at, last_seen_at)
        SELECT '5511' || lpad(n::text, 9, '0'), '', '', '', now(), now()
        FROM generate_series(1, {CONVERSATIONS}) n""",
    f"""INSERT INTO conversations_conversation
        (customer_id, status, handler, handoff_reason, handoff_source, handoff_at,
         first_staff_reply_at, created_at, updated_at, last_inbound_at, closed_at)
        SELECT n,
          CASE WHEN n % 5 < 2 THEN 'closed' ELSE 'open' END,
          CASE WHEN n % 3 = 0 THEN 'human' ELSE 'bot' END,
          '', CASE WHEN n % 3 = 0 THEN 'tool' ELSE '' END,
          CASE WHEN n % 3 = 0 THEN t + interval '5 minutes' END,
          CASE WHEN n % 6 = 0 THEN t + interval '5 minutes' + (n % 900) * interval '1 second' END,
          t, t, t, CASE WHEN n % 5 < 2 THEN t + interval '1 hour' END
        FROM (SELECT n, now() - random() * interval '{DAYS} days' AS t
              FROM generate_series(1, {CONVERSATIONS}) n) s""",
    f"""INSERT INTO conversations_turn
        (conversation_id, started_at, finished_at, outcome, batch_size, supersede_count,
         lock_wait_ms, debounce_wait_ms, crm_ms, llm_ms, total_ms, detail, tool_calls,
         input_tokens, cached_input_tokens, output_tokens, transcription_ms, first_reply_ms,
         transcription_usage)
        SELECT 1 + n % {CONVERSATIONS}, t, t + interval '3 seconds',
          (ARRAY['answered','answered','answered','answered','answered','answered','answered',
                 'fallback','human','lost_lock'])[1 + n % 10],
          1 + n % 3, 0, CASE WHEN n % 20 = 0 THEN n % 500 ELSE 0 END, 2000, 90,
          1500 + n % 4000, 2000 + n % 6000, '', '[]'::jsonb,
          1500 + n % 1000, n % 800, 80 + n % 200, 0, 3000 + n % 9000, '{{}}'::jsonb
        FROM (SELECT n, now() - random() * interval '{DAYS} days' AS t
              FROM generate_series(1, {TURNS}) n) s""",
    f"""INSERT INTO conversations_message
        (conversation_id, direction, provider_id, type, text, transcript, media_file, raw,
         state, failure_reason, turn_id, kind, delivery_status, delivery_errors, sent_at,
         created_at, updated_at, media_id, media_mime_type, media_sha256, media_status,
         media_attempts, media_error)
        SELECT 1 + n % {CONVERSATIONS},
          CASE WHEN n % 2 = 0 THEN 'in' ELSE 'out' END, 'wamid.bench-' || n, 'text',
          'mensagem de teste número ' || n, '', '', '{{}}'::jsonb,
          CASE WHEN n % 2 = 1 THEN '' WHEN n % 50000 = 0 THEN 'pending' ELSE 'answered' END,
          '', 1 + n % {TURNS},
          CASE WHEN n % 2 = 0 THEN '' WHEN n % 40 = 1 THEN 'fallback' ELSE 'reply' END,
          CASE WHEN n % 2 = 1 THEN 'delivered' ELSE '' END, '[]'::jsonb, t, t, t,
          '', '', '', '', 0, ''
        FROM (SELECT n, now() - random() * interval '{DAYS} days' AS t
              FROM generate_series(1, {MESSAGES}) n) s""",
    "ANALYZE",
]


def fill() -> None:
    started = time.monotonic()
    with connection.cursor() as cursor:
        for statement in FILL_SQL:
            cursor.execute(statement)
    print(f"filled {MESSAGES} messages and {TURNS} turns in {time.monotonic() - started:.0f} s")


def timed(fn, runs: int) -> tuple[float, float]:
    fn()  # warm: the first call loads templates and settles the plan cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--refill", action="store_true")
    options = parser.parse_args()
    call_command("migrate", "--no-input", verbosity=0)
    if options.refill or Message.objects.count() < MESSAGES or Turn.objects.count() < TURNS:
        fill()
    print(f"{Message.objects.count()} messages, {Turn.objects.count()} turns")
    user, _ = User.objects.get_or_create(
        username="bench-dashboard", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    print(
        f"{'period':<8}{'cold page':>10}{'Redis flushed':>15}{'figures median':>16}{'max':>8}"
        f"{'page median':>14}{'max':>8}  (ms)"
    )
    for period in reports.PERIODS:
        # Cold: no hour's rollup stored yet (a first deploy, before any worker's warming pass).
        HourlyRollup.objects.all().delete()
        started = time.perf_counter()
        assert client.get("/admin/dashboard/", {"period": period}).status_code == 200
        cold = (time.perf_counter() - started) * 1000
        # Redis lost everything (a restart): the rollups stay in the database.
        cache.clear()
        started = time.perf_counter()
        assert client.get("/admin/dashboard/", {"period": period}).status_code == 200
        flushed = (time.perf_counter() - started) * 1000
        figures = timed(lambda period=period: reports.build_report(period), options.runs)

        def page(period=period):
            response = client.get("/admin/dashboard/", {"period": period})
            assert response.status_code == 200, response.status_code

        rendered = timed(page, options.runs)
        print(
            f"{period:<8}{cold:>10.0f}{flushed:>15.0f}{figures[0]:>16.0f}{figures[1]:>8.0f}"
            f"{rendered[0]:>14.0f}{rendered[1]:>8.0f}"
        )


if __name__ == "__main__":
    main()
