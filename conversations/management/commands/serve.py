"""`manage.py serve`: the web server and the inbound worker in one process.

The in-memory channel layer of embedded mode only reaches consumers in the same event loop, so
the worker cannot be a second process there: daphne runs on Twisted's asyncio reactor, and the
channels Worker that `runworker` would run is scheduled as a task on that same loop. With
REDIS_URL set the same command works unchanged (the worker then listens on Redis).
"""

import asyncio
import sys

from channels.layers import get_channel_layer
from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management.base import BaseCommand, CommandError
from twisted.internet import defer, reactor

from conversations.events import INBOUND_CHANNEL
from conversations.management.commands.runworker import (
    SHUTDOWN_GRACE_SECONDS,
    InboundChannelWorker,
)


class ServeServer(Server):
    """Daphne's server, telling the operator where it listens (port 0 picks a free port)."""

    def __init__(self, *args, announce, **kwargs):
        super().__init__(*args, **kwargs)
        self.announce = announce

    def listen_success(self, port):
        super().listen_success(port)
        host = port.getHost()
        self.announce(host.host, host.port)


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
        worker = InboundChannelWorker(
            application=application, channels=[INBOUND_CHANNEL], channel_layer=channel_layer
        )

        server = ServeServer(
            application=web_application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,  # SIGINT/SIGTERM stop the reactor, which runs the triggers
            # Called once daphne made the reactor's asyncio loop current, before it runs.
            ready_callable=lambda: worker.start(asyncio.get_event_loop()),
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
        url = f"http://{shown}:{port}/"
        self.stdout.write(f"supportbot is running at {url} (Ctrl-C to stop)")
        self.stdout.write(f"  admin:     {url}{settings.ADMIN_URL}")
        if settings.DEBUG:
            self.stdout.write(f"  simulator: {url}simulator/")
        sys.stdout.flush()
