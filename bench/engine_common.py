"""Shared set-up for the engine benchmarks (bench/engine_*.py). Not a benchmark itself.

Modes, as the platform's:
- embedded (no env): a SQLite file of its own, var/bench_engine.sqlite3 (never the dev database),
  fakeredis locks, the in-process channel layer;
- real services: DATABASE_URL (PostgreSQL; the database is created if missing) and REDIS_URL
  (a Redis db of its own, flushed at start), e.g.
  DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_engine REDIS_URL=redis://127.0.0.1:6379/4

Time is scaled 1:100: CRM 8-10 s -> 80-100 ms (a blocking call in a worker thread, like the real
one), LLM 15-20 s -> 150-200 ms (an async call, like the real SDK), debounce 2 s / 8 s ->
20 ms / 80 ms.
"""

import asyncio
import logging
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _create_database(url: str) -> None:
    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        return
    name = parsed.path.lstrip("/")
    args = ["-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 5432)]
    args += ["-U", parsed.username or "postgres"]
    exists = subprocess.run(
        [
            "psql",
            *args,
            "-d",
            "postgres",
            "-Atc",
            f"SELECT 1 FROM pg_database WHERE datname='{name}'",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if exists.stdout.strip() != "1":
        subprocess.run(["createdb", *args, name], check=True)


def setup(prepare: bool = True) -> str:
    """Configure Django for the mode the environment asks for, return the mode's name.

    prepare: also create and migrate the database and empty the Redis db (the benchmark's own
    process; a worker process it starts only connects).
    """
    import django
    from django.conf import settings

    if os.environ.get("DATABASE_URL"):
        if prepare:
            _create_database(os.environ["DATABASE_URL"])
    elif settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"]["NAME"] = settings.VAR_DIR / "bench_engine.sqlite3"
    django.setup()
    logging.getLogger().setLevel(logging.WARNING)
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    mode = f"{db} + {'fakeredis (embedded)' if settings.EMBEDDED else 'Redis'}"
    if not prepare:
        return mode
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    cache.clear()
    return mode


def reset_data() -> None:
    from conversations.models import Customer, RuntimeSettings, Turn
    from conversations.runtime import reset_runtime_cache
    from crm_gateway.models import OutageNotice

    OutageNotice.objects.all().delete()
    Turn.objects.all().delete()
    Customer.objects.all().delete()  # cascades to conversations and messages
    RuntimeSettings.objects.all().delete()
    reset_runtime_cache()
    vacuum()


def vacuum() -> None:
    """PostgreSQL: clear the dead rows the deletes above leave. With autovacuum off (as on our
    bench machine) they pile up run after run and every index scan wades through them."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from conversations.models import Conversation, Customer, Message, RuntimeSettings, Turn

    with connection.cursor() as cursor:
        for model in (Message, Turn, Conversation, Customer, RuntimeSettings):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def configure(**fields) -> None:
    from conversations.models import RuntimeSettings
    from conversations.runtime import reset_runtime_cache

    row, _ = RuntimeSettings.objects.get_or_create(pk=1)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    reset_runtime_cache()


# Scaled 1:100 from the defaults: quiet 2 s, max wait 8 s.
SCALED = {"debounce_quiet_ms": 20, "debounce_max_wait_ms": 80, "lock_ttl_seconds": 10}


_wa_ids: dict[int, str] = {}  # conversation id -> its customer's WhatsApp id


def new_conversations(n: int) -> list[int]:
    from conversations.models import Conversation, Customer

    ids = []
    for i in range(n):
        customer = Customer.objects.create(wa_id=f"55219{i:08d}")
        ids.append(Conversation.objects.create(customer=customer).pk)
        _wa_ids[ids[-1]] = customer.wa_id
    return ids


def wa_id_of(conversation_id: int) -> str:
    """The WhatsApp id a conversation made by new_conversations() receives messages from."""
    return _wa_ids[conversation_id]


def store(conversation_id: int, text: str):
    """What the webhook stores (pending inbound message)."""
    from django.db import close_old_connections

    from conversations.models import Message

    close_old_connections()
    try:
        return Message.objects.create(
            conversation_id=conversation_id,
            direction=Message.Direction.INBOUND,
            provider_id=f"wamid.bench-{uuid.uuid4().hex}",
            text=text,
            state=Message.State.PENDING,
        )
    finally:
        close_old_connections()


def deliver(wa_id: str, text: str) -> list[int]:
    """What the webhook does with one message after its checks: store it pending, exactly once,
    through conversations.webhook.ingest. Returns the conversations to wake (none when an earlier message
    of the conversation is still pending: the worker that takes it takes this one too)."""
    from conversations.webhook.ingest import ingest_notification
    from conversations.whatsapp.payloads import InboundMessage, Notification

    item = InboundMessage(
        wamid=f"wamid.bench-{uuid.uuid4().hex}", wa_id=wa_id, type="text", text=text
    )
    return ingest_notification(Notification(messages=[item]), wake=False).conversation_ids


class FakeLlm:
    """generate_reply stand-in: 150-200 ms (15-20 s scaled), counts calls."""

    def __init__(self, low_s: float = 0.15, high_s: float = 0.20):
        self.low_s, self.high_s = low_s, high_s
        self.calls = 0

    async def __call__(self, request) -> str:
        self.calls += 1
        await asyncio.sleep(random.uniform(self.low_s, self.high_s))
        return "Certo! Verifiquei aqui e sua conexão está normal."


class FakeCrm:
    """build_customer_context stand-in: blocks its thread 80-100 ms (8-10 s scaled).

    cached=True: only a customer's first lookup is slow, like the seed's 5-minute cache and our
    cached lookup (crm_gateway.lookup).
    """

    def __init__(self, low_s: float = 0.08, high_s: float = 0.10, cached: bool = False):
        self.low_s, self.high_s = low_s, high_s
        self.cached = cached
        self.seen: set[int] = set()
        self.calls = 0
        self.slow_calls = 0

    def __call__(self, conversation_id: int, batch_texts: list[str]):
        from crm_gateway.context import CustomerContext

        self.calls += 1
        if not (self.cached and conversation_id in self.seen):
            self.slow_calls += 1
            time.sleep(random.uniform(self.low_s, self.high_s))
        self.seen.add(conversation_id)
        return CustomerContext(document_status="unknown", masked_document="")


def patch_engine(llm, crm) -> None:
    from conversations.engine import turn_run

    turn_run.generate_reply = llm
    turn_run.build_customer_context = crm
    turn_run.send_typing_indicator = lambda message: True


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class InProcessWorker:
    """The real inbound worker (channels Worker + InboundWorker consumer) on this event loop."""

    async def __aenter__(self):
        from channels.layers import channel_layers, get_channel_layer
        from channels.worker import Worker

        from conversations.engine.worker import get_scheduler
        from conversations.events import INBOUND_CHANNEL
        from supportbot.asgi import application

        channel_layers.backends.pop("default", None)
        layer = get_channel_layer()
        if hasattr(layer, "flush"):
            await layer.flush()
        self.worker = Worker(
            application=application, channels=[INBOUND_CHANNEL], channel_layer=layer
        )
        self.scheduler = get_scheduler()
        self.task = asyncio.get_running_loop().create_task(self.worker.arun())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        listeners = [
            t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Worker.listener"
        ]
        for task in [*listeners, *self.scheduler.tasks.values(), self.scheduler.sweeper]:
            task.cancel()
        # A listener blocked in a Redis BRPOP may take a while to notice: do not wait for it.
        await asyncio.wait([self.task, *listeners], timeout=1)
        from conversations.engine.worker import _schedulers

        _schedulers.pop(asyncio.get_running_loop(), None)
