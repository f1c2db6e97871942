"""Helpers for the engine, worker and sweeper tests: a slow fake assistant that records what it
was asked, a slow fake CRM context, scaled runtime settings, and an in-process channels Worker.

Time is scaled down (debounce tens of ms, CRM ~90 ms, LLM ~150-250 ms) so the seed's timeline
runs in a fraction of a second.
"""

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import defaultdict

import pytest
from channels.layers import channel_layers, get_channel_layer
from channels.worker import Worker
from django.db import close_old_connections

from conversations import events
from conversations.assistant.media_input import content_text
from conversations.assistant.openai_assistant import AssistantError
from conversations.engine import turn_run
from conversations.events import INBOUND_CHANNEL
from conversations.models import Conversation, Customer, Message, RuntimeSettings, Turn
from conversations.runtime import reset_runtime_cache
from conversations.threads import in_thread
from crm_gateway.context import CustomerContext
from supportbot.asgi import application  # imported early: it runs django.setup() (logging)

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def short_lived_connections(monkeypatch):
    """Worker threads close their database connection after each unit of work in these tests:
    idle connections kept by threads that die with each test's event loop would block the test
    database from being dropped. (Import this fixture into a test module to use it.)
    """
    from django.conf import settings

    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)


# Scaled 1:100 from the real defaults (2 s quiet, 8 s max wait); lock TTL stays in whole seconds.
SCALED = {
    "debounce_quiet_ms": 50,
    "debounce_max_wait_ms": 200,
    "lock_ttl_seconds": 5,
    "supersede_enabled": True,
    "supersede_cap": 2,
}


def configure(**fields) -> RuntimeSettings:
    """Save the runtime settings row (no validation: tests use scaled, sub-minimum values)."""
    values = {**SCALED, **fields}
    row, _ = RuntimeSettings.objects.get_or_create(pk=1)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    reset_runtime_cache()
    return row


def new_conversation(handler: str = Conversation.Handler.BOT) -> Conversation:
    number = next(_numbers)
    customer = Customer.objects.create(wa_id=f"55119{number:08d}", profile_name=f"Cliente {number}")
    return Conversation.objects.create(customer=customer, handler=handler)


def store(conversation_id: int, text: str) -> Message:
    """What the webhook stores: one pending inbound text message."""
    close_old_connections()
    try:
        return Message.objects.create(
            conversation_id=conversation_id,
            direction=Message.Direction.INBOUND,
            provider_id=f"wamid.test-{uuid.uuid4().hex}",
            type="text",
            text=text,
            state=Message.State.PENDING,
        )
    finally:
        close_old_connections()


astore = in_thread(store)


def request_texts(request) -> list[str]:
    """The user texts in an assistant request, oldest first."""
    return [content_text(item["content"]) for item in request.transcript if item["role"] == "user"]


class FakeAssistant:
    """Stands in for conversations.engine.turn_run.generate_reply: sleeps, records, answers.

    The reply names the last user text, so a test can tell which question a reply answered.
    `fail=True` raises AssistantError (the real one's final failure). `on_call(request)` runs
    at the start of each call (e.g. to make a message arrive mid-call).
    """

    def __init__(self, delay_s: float = 0.15, fail: bool = False, on_call=None):
        self.delay_s = delay_s
        self.fail = fail
        self.on_call = on_call
        self.calls = []
        self.active = 0
        self.max_active = 0

    async def __call__(self, request) -> str:
        self.calls.append(request)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.on_call is not None:
                result = self.on_call(request)
                if asyncio.iscoroutine(result):
                    await result
            await asyncio.sleep(self.delay_s)
            if self.fail:
                raise AssistantError("the fake model is down")
            return f"Resposta sobre: {request_texts(request)[-1]}"
        finally:
            self.active -= 1


class FakeCrm:
    """Stands in for build_customer_context (a thread-blocking call, like the real one)."""

    def __init__(self, delay_s: float = 0.09, notices=()):
        self.delay_s = delay_s
        self.notices = list(notices)
        self.calls: list[tuple[int, list[str]]] = []

    def __call__(self, conversation_id: int, batch_texts: list[str]) -> CustomerContext:
        self.calls.append((conversation_id, list(batch_texts)))
        time.sleep(self.delay_s)
        return CustomerContext(
            document_status="unknown", masked_document="", notices=list(self.notices)
        )


def replies(conversation_id: int, kind: str = Message.Kind.REPLY) -> list[Message]:
    close_old_connections()
    return list(
        Message.objects.filter(
            conversation_id=conversation_id, direction=Message.Direction.OUTBOUND, kind=kind
        ).order_by("created_at", "id")
    )


def inbound(conversation_id: int) -> list[Message]:
    close_old_connections()
    return list(
        Message.objects.filter(
            conversation_id=conversation_id, direction=Message.Direction.INBOUND
        ).order_by("created_at", "id")
    )


def turns(conversation_id: int) -> list[Turn]:
    close_old_connections()
    return list(Turn.objects.filter(conversation_id=conversation_id).order_by("started_at", "id"))


async def wait_until(predicate, timeout_s: float = 5.0, every_s: float = 0.02) -> None:
    """Poll a sync predicate (run in a thread: it may query) until it is true or time runs out."""
    check = in_thread(predicate)
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(every_s)


def all_settled(conversation_ids) -> bool:
    close_old_connections()
    return not Message.objects.filter(
        conversation_id__in=list(conversation_ids),
        direction=Message.Direction.INBOUND,
        state__in=[Message.State.PENDING, Message.State.PROCESSING],
    ).exists()


def overlapping_turns(conversation_ids) -> list[tuple[int, int]]:
    """Pairs of turns of one conversation whose [started, finished] intervals overlap."""
    close_old_connections()
    by_conversation = defaultdict(list)
    for turn in Turn.objects.filter(conversation_id__in=list(conversation_ids)).order_by(
        "started_at"
    ):
        by_conversation[turn.conversation_id].append(turn)
    clashes = []
    for items in by_conversation.values():
        for earlier, later in itertools.pairwise(items):
            if earlier.finished_at is None or later.started_at < earlier.finished_at:
                clashes.append((earlier.pk, later.pk))
    return clashes


def fresh_channel_layer():
    """A new default channel layer for this test's event loop (layers hold loop-bound state)."""
    channel_layers.backends.pop("default", None)
    return get_channel_layer()


@contextlib.asynccontextmanager
async def running_worker():
    """The real channels Worker on the inbound channel, in this loop, stopped cleanly after."""
    from conversations.engine.worker import get_scheduler

    layer = fresh_channel_layer()
    worker = Worker(application=application, channels=[INBOUND_CHANNEL], channel_layer=layer)
    scheduler = get_scheduler()
    task = asyncio.get_running_loop().create_task(worker.arun())
    try:
        yield scheduler
    finally:
        task.cancel()
        # Worker.handle does not cancel its listener tasks: do it, or they outlive the loop.
        listeners = [
            t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Worker.listener"
        ]
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(task, *listeners, return_exceptions=True)
        for details in worker.application_instances.values():
            details["future"].cancel()
        await stop_scheduler()
        channel_layers.backends.pop("default", None)


async def stop_scheduler() -> None:
    from conversations.engine.worker import _schedulers

    scheduler = _schedulers.pop(asyncio.get_running_loop(), None)
    if scheduler is None:
        return
    from conversations.management.commands.runworker import cancel_and_wait

    await scheduler.drain(10)
    await cancel_and_wait([*scheduler.tasks.values(), scheduler.sweeper, scheduler.retention])


# Fixtures and helpers of the engine and turn tests (import them into the test module).


@pytest.fixture
def assistant(monkeypatch):
    fake = FakeAssistant(delay_s=0.15)
    monkeypatch.setattr(turn_run, "generate_reply", fake)
    return fake


def install_crm(monkeypatch, delay_s: float) -> "FakeCrm":
    """A FakeCrm in the turn's place of the CRM context; every outage notice may go out."""
    fake = FakeCrm(delay_s=delay_s)
    monkeypatch.setattr(turn_run, "build_customer_context", fake)
    monkeypatch.setattr(turn_run, "claim_notice", lambda outage_id, conversation_id: True)
    return fake


@pytest.fixture
def crm(monkeypatch):
    return install_crm(monkeypatch, delay_s=0.09)


@pytest.fixture
def wakes(monkeypatch):
    """Wakes the engine sends (re-wakes after release), recorded instead of delivered."""
    sent = []

    async def record(conversation_id):
        sent.append(conversation_id)
        return True

    monkeypatch.setattr(events, "asend_wake", record)
    return sent


@pytest.fixture
def scaled(db):
    return configure()


async def q(fn, *args, **kwargs):
    """Run a sync (querying) helper from a test's event loop."""
    return await in_thread(fn)(*args, **kwargs)


async def conversation(**kwargs) -> Conversation:
    return await in_thread(new_conversation)(**kwargs)


async def webhook(conversation_id: int, text: str) -> Message:
    """What the webhook does: store the message, then wake the worker."""
    message = await astore(conversation_id, text)
    await events.asend_wake(conversation_id)
    return message
