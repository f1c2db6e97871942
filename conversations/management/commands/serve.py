"""`manage.py serve`: the web server and the inbound worker in one process.

The in-memory channel layer of embedded mode only reaches consumers in the same event loop, so
the worker cannot be a second process there: daphne runs on Twisted's asyncio reactor, and the
channels Worker that `runworker` would run is scheduled as a task on that same loop. With
REDIS_URL set the same command works unchanged (the worker then listens on Redis).
"""

import asyncio
import logging
import sys

from channels.layers import get_channel_layer
from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management.base import BaseCommand, CommandError
from twisted.internet import defer, reactor

from conversations.backoff import backoff_delays
from conversations.events import INBOUND_CHANNEL
from conversations.management.commands.runworker import (
    SHUTDOWN_GRACE_SECONDS,
    InboundChannelWorker,
)

logger = logging.getLogger(__name__)

# A listener that failed (Redis down, say) is restarted on this schedule instead of leaving the
# web server up with nobody answering.
RESTART_BASE_MS = 1000
RESTART_CAP_MS = 30000


class ServeServer(Server):
    """Daphne's server, telling the operator where it listens (port 0 picks a free port)."""

    def __init__(self, *args, announce, **kwargs):
        super().__init__(*args, **kwargs)
        self.announce = announce

    def listen_success(self, port):
        super().listen_success(port)
        host = port.getHost()
        self.announce(host.host, host.port)


class EmbeddedWorker:
    """The inbound worker as a task on the server's loop; a failed listener is restarted."""

    def __init__(self, application, channel_layer):
        self.application = application
        self.channel_layer = channel_layer
        self.worker: InboundChannelWorker | None = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_event_loop().create_task(self._run())

    async def _run(self) -> None:
        delays = backoff_delays(RESTART_BASE_MS, RESTART_CAP_MS)
        while True:
            self.worker = InboundChannelWorker(
                application=self.application,
                channels=[INBOUND_CHANNEL],
                channel_layer=self.channel_layer,
            )
            try:
                await self.worker.arun()
            except Exception as exc:  # the listener died; the database keeps the messages
                logger.error("inbound worker stopped (%s); restarting it", type(exc).__name__)
                await asyncio.sleep(next(delays))

    async def stop(self, grace: float) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.worker is not None:
            await self.worker.stop(grace)


class Command(BaseCommand):
    help = "Run the web server (daphne) and the inbound worker in one process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument(
            "--port", type=int, default=8000, help="Port to listen on (0 picks a free one)."
        )

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535, not {port}")
        channel_layer = get_channel_layer()
        if channel_layer is None:
            raise CommandError("CHANNEL_LAYERS is not configured")

        application = get_default_application()
        # Admin and simulator assets, as runserver serves them, only while debugging.
        web_application = ASGIStaticFilesHandler(application) if settings.DEBUG else application
        worker = EmbeddedWorker(application, channel_layer)

        server = ServeServer(
            application=web_application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,  # SIGINT/SIGTERM stop the reactor, which runs the triggers
            ready_callable=lambda: reactor.callWhenRunning(worker.start),
            announce=self._announce,
        )
        reactor.addSystemEventTrigger(
            "before",
            "shutdown",
            lambda: defer.Deferred.fromFuture(
                asyncio.ensure_future(worker.stop(SHUTDOWN_GRACE_SECONDS))
            ),
        )
        mode = "embedded" if settings.EMBEDDED else "Redis"
        self.stdout.write(f"Starting supportbot web server and inbound worker ({mode} mode)")
        server.run()
        if server.abort_start or not server.listening_addresses:
            raise CommandError(f"could not listen on {host}:{port}")
        self.stdout.write("supportbot stopped")

    def _announce(self, host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        self.stdout.write(f"supportbot is running at http://{shown}:{port}/ (Ctrl-C to stop)")
        sys.stdout.flush()
