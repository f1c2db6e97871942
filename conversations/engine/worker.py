"""The inbound worker: `manage.py runworker supportbot-inbound`, or in-process under `serve`.

Channels hands one consumer instance every event of the channel, one after another, so the
handler only validates the wake and spawns a task: a 20 s LLM call must not stall the other
conversations of this process. Tasks are bounded by WORKER_MAX_TURNS; blocking calls run on a
pool of WORKER_THREADS threads.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from channels.consumer import AsyncConsumer
from django.conf import settings

from conversations import events
from conversations.engine import sweeper, turn_loop
from conversations.privacy import retention

logger = logging.getLogger(__name__)


class TurnScheduler:
    """One per event loop: at most one task per conversation, at most WORKER_MAX_TURNS running.

    A wake for a conversation that already has a task here is coalesced: if it arrived after the
    engine's last look for pending messages, the task runs the engine once more before it exits,
    so a message stored after that look is never left behind.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.slots = asyncio.Semaphore(settings.WORKER_MAX_TURNS)
        self.tasks: dict[int, asyncio.Task] = {}
        self.rewake: set[int] = set()
        loop.set_default_executor(
            ThreadPoolExecutor(settings.WORKER_THREADS, thread_name_prefix="supportbot-worker")
        )
        self.sweeper = loop.create_task(sweeper.sweep_forever())
        self.retention = loop.create_task(retention.purge_forever())

    def wake(self, conversation_id: int) -> None:
        if conversation_id in self.tasks:
            self.rewake.add(conversation_id)
            return
        task = self.loop.create_task(self._run(conversation_id))
        self.tasks[conversation_id] = task

    async def _run(self, conversation_id: int) -> None:
        def last_look() -> None:
            # Wakes are sent after their message commits, so the engine's last look (after the
            # release) sees every message whose wake arrived before it: only later wakes need
            # another run (a conversation with a burst would otherwise run the engine twice).
            self.rewake.discard(conversation_id)

        try:
            while True:
                self.rewake.discard(conversation_id)
                async with self.slots:
                    try:
                        await turn_loop.run_turns(conversation_id, on_last_look=last_look)
                    except Exception:  # never kill the worker; the sweeper retries later
                        logger.exception("conversation %s: turn loop failed", conversation_id)
                if conversation_id not in self.rewake:
                    break
        finally:
            self.tasks.pop(conversation_id, None)
            self.rewake.discard(conversation_id)

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait for every running task (tests, shutdown), at most `timeout_s` seconds; True when
        none is left. Cancels nothing: wait_for would cancel the turns on timeout and then wait
        for them, for ever if one lost its cancel (Python 3.11: see runworker.cancel_and_wait)."""
        deadline = None if timeout_s is None else self.loop.time() + timeout_s
        while self.tasks:
            remaining = None if deadline is None else deadline - self.loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(list(self.tasks.values()), timeout=remaining)
        return True


_schedulers: dict[asyncio.AbstractEventLoop, TurnScheduler] = {}


def get_scheduler() -> TurnScheduler:
    loop = asyncio.get_running_loop()
    scheduler = _schedulers.get(loop)
    if scheduler is None:
        for old in [old for old in _schedulers if old.is_closed()]:
            del _schedulers[old]
        scheduler = _schedulers[loop] = TurnScheduler(loop)
    return scheduler


def parse_wake(event: dict) -> int | None:
    conversation_id = event.get("conversation_id") if isinstance(event, dict) else None
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int):
        return None
    return conversation_id if conversation_id > 0 else None


class InboundWorker(AsyncConsumer):
    async def dispatch(self, message):
        # channels closes the loop thread's old database connections before every handler, a
        # thread hop per wake. The wake handler touches no database: the engine's units of work
        # (conversations.threads) manage their own connections.
        if isinstance(message, dict) and message.get("type") == events.WAKE_EVENT:
            await self.conversation_wake(message)
        else:
            await super().dispatch(message)

    async def conversation_wake(self, event):
        conversation_id = parse_wake(event)
        if conversation_id is None:
            logger.warning("ignored a malformed %s event: %r", events.WAKE_EVENT, sorted(event)[:5])
            return
        get_scheduler().wake(conversation_id)
