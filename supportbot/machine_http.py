"""HTTP paths for machines, served without Django's browser middleware.

Meta's servers need none of it (no session, login, CSRF token, messages or frame headers), and
under ASGI each `MiddlewareMixin` hook costs a crossing between the event loop and a thread.
Only the paths listed here are routed past it; everything else (admin, simulator, health)
goes through Django with the whole stack.
"""

from conversations.webhook.asgi_app import WhatsAppWebhookApp

WEBHOOK_PATH = "/webhooks/whatsapp/"  # as configured in the Meta app; also in conversations/urls.py


class MachinePathRouter:
    """ASGI app: the webhook path to its own app, every other HTTP request to Django."""

    def __init__(self, django_app, routes: dict | None = None):
        self.django_app = django_app
        self.routes = routes if routes is not None else {WEBHOOK_PATH: WhatsAppWebhookApp()}

    async def __call__(self, scope, receive, send):
        app = self.routes.get(scope["path"], self.django_app)
        return await app(scope, receive, send)
