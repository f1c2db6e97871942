"""ASGI entry point: HTTP (Django), WebSocket (simulator) and the inbound worker channel."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from conversations.engine.worker import InboundWorker  # noqa: E402
from conversations.events import INBOUND_CHANNEL  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from supportbot.machine_http import MachinePathRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Meta's webhook skips the browser middleware (supportbot/machine_http.py).
        "http": MachinePathRouter(django_asgi_app),
        # Only pages served from our own hosts may open a socket (DJANGO_ALLOWED_HOSTS).
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        "channel": ChannelNameRouter({INBOUND_CHANNEL: InboundWorker.as_asgi()}),
    }
)
