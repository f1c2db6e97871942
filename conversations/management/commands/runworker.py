"""`manage.py runworker supportbot-inbound`: channels' runworker, made a supportbot worker process.

Differences from channels' command, all needed in production:
- the sweeper starts with the process. Channels creates the consumer only when the first event
  arrives, and after a crash nobody may send one: the sweeper is what finds the dead worker's
  messages, so it cannot wait for a wake.
- the runtime settings are reloaded every second (see keep_runtime_fresh), and the worker's
  heartbeat is written every few seconds (conversations.heartbeat), and the dashboard's hourly
  rollups are stored as hours settle (keep_rollups_warm).
- a listener error (Redis unreachable) does not end the process and its running turns: it
  listens again after a pause.
- SIGTERM/SIGINT stop it gracefully: stop taking wakes, let running turns finish for a while,
  then cancel the rest (their claims are retaken by the sweeper once the lock expires).

`manage.py serve` runs the same InboundChannelWorker inside its web server's event loop.
"""

import asyncio
import logging
import signal

from channels.layers import get_channel_layer
from channels.management.commands.runworker import Command as ChannelsRunworker
from channels.routing import get_default_application
from channels.worker import Worker
from django.core.management import CommandError

from conversations import heartbeat
from conversations.backoff import backoff_delays
from conversations.engine.worker import get_scheduler
from conversations.runtime import get_runtime
from conversations.staff import rollups
from conversations.threads import every

logger = logging.getLogger("django.channels.worker")

# How long running turns may go on after SIGTERM/SIGINT before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 10.0
# How often the worker reloads the runtime settings (get_runtime reads at most every ~2 s).
RUNTIME_REFRESH_SECONDS = 1.0
# How often a worker stores the dashboard's rollups of the hours that settled meanwhile.
ROLLUP_WARM_SECONDS = 300.0
# A failed listener (channel layer unreachable) listens again on this schedule.
RESTART_BASE_MS = 500
RESTART_CAP_MS = 10000
# While a cancelled task is still running, it is cancelled again this often (see cancel_and_wait).
RECANCEL_SECONDS = 0.5


async def cancel_and_wait(tasks, recancel_s: float = RECANCEL_SECONDS) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again while one runs on.

    One cancel is not always enough on Python 3.11: asyncio.wait_for, cancelled in the instant
    its inner future completes, returns that result instead of raising (fixed in 3.12). redis-py
    sends every command through wait_for, so a listener cancelled mid-send swallowed it and went
    on reading the channel (BZPOPMIN, 5 s at a time) for ever, and the stop never ended.
    """
    running = {task for task in tasks if not task.done()}
    while running:
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=recancel_s)


async def keep_runtime_fresh() -> None:
    """Reload the runtime settings in a thread every RUNTIME_REFRESH_SECONDS.

    Turns read them on the event loop, where get_runtime() can only serve its cached copy (and
    refresh it for the *next* call): in a quiet worker that copy could be minutes old when the
    next turn starts. Refreshing here keeps it under ~3 s old, so a change saved in the admin
    reaches the next turn of every worker within 5 s.
    """
    await every(RUNTIME_REFRESH_SECONDS, get_runtime, "runtime settings refresh failed")


async def keep_rollups_warm() -> None:
    """Store the dashboard's hourly rollups as hours settle (conversations.staff.rollups), so
    the dashboard reads them instead of aggregating a month of messages on a supervisor's
    click. Cheap once warm: one query for the month's hours."""
    # At start too: a first deploy's dashboard is warm once this pass ends.
    await every(ROLLUP_WARM_SECONDS, rollups.warm, "dashboard rollups not warmed")


class InboundChannelWorker(Worker):
    """channels' Worker that starts this loop's turn scheduler (and its sweeper) at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.task: asyncio.Task | None = None
        self.listeners: list[asyncio.Task] = []

    async def handle(self):
        get_scheduler()
        refresher = asyncio.ensure_future(keep_runtime_fresh())
        beating = asyncio.ensure_future(heartbeat.beat_forever())
        warming = asyncio.ensure_future(keep_rollups_warm())
        try:
            await self._listen()
        finally:
            refresher.cancel()
            beating.cancel()
            warming.cancel()

    async def _listen(self):
        delays = backoff_delays(RESTART_BASE_MS, RESTART_CAP_MS)
        while True:
            # gather, unlike channels' asyncio.wait, cancels the listeners when we are cancelled.
            listeners = [asyncio.ensure_future(self.listener(name)) for name in self.channels]
            self.listeners = listeners
            try:
                await asyncio.gather(*listeners)
            except Exception as exc:
                for listener in listeners:
                    listener.cancel()
                # Redis hiccup: keep the process (and its running turns) alive and listen
                # again; the database holds the messages and the sweeper re-wakes them.
                logger.error("inbound listener failed (%s); listening again", type(exc).__name__)
                await asyncio.sleep(next(delays))

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task:
        """Listen in a task on `loop` (default: the running one)."""
        self.task = (loop or asyncio.get_running_loop()).create_task(self.arun())
        return self.task

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop listening, give running turns `grace` seconds, then cancel what is left."""
        # The listeners too: a listener that ignored its cancel would outlive the worker's task
        # (gather ends with its first cancelled child) and go on taking wakes.
        if self.task is not None:
            await cancel_and_wait([self.task, *self.listeners])
        for details in self.application_instances.values():
            details["future"].cancel()
        scheduler = get_scheduler()
        if not await scheduler.drain(grace):
            logger.warning(
                "%d turns still running after %s s: cancelled", len(scheduler.tasks), grace
            )
        await cancel_and_wait([*scheduler.tasks.values(), scheduler.sweeper, scheduler.retention])


class Command(ChannelsRunworker):
    def handle(self, *args, **options):
        channel_layer = get_channel_layer(options["layer"])
        if channel_layer is None:
            raise CommandError("You do not have any CHANNEL_LAYERS configured.")
        logger.info("Running worker for channels %s", options["channels"])
        worker = InboundChannelWorker(
            application=get_default_application(),
            channels=options["channels"],
            channel_layer=channel_layer,
        )
        asyncio.run(self._run(worker))
        logger.info("worker stopped")

    async def _run(self, worker: InboundChannelWorker) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        listening = worker.start()
        stop_requested = loop.create_task(stopping.wait())
        await asyncio.wait({listening, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        stop_requested.cancel()
        if listening.done():
            listening.result()  # an unexpected end (a bug): exit with its error
        logger.info("stopping: no new wakes; waiting for running turns")
        await worker.stop()
