"""Play a WhatsApp customer in the browser (DJANGO_DEBUG only; every view 404s otherwise).

How a message travels, as close to production as a browser allows:
1. the page POSTs {wa_id, name, text} to `/simulator/send/`, which builds the Cloud API webhook
   body and signs it with WHATSAPP_APP_SECRET (the secret never reaches the browser);
2. the page POSTs exactly those bytes, with the X-Hub-Signature-256 header, to our real
   `/webhooks/whatsapp/` over HTTP, like Meta does;
3. replies come back live through SimulatorConsumer: whatsapp.send_text publishes every outbound
   message to events.simulator_group(customer.wa_id), which this consumer joins.
"""

import json
import time
import uuid
from functools import wraps

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from conversations.events import simulator_group
from conversations.models import Message
from conversations.phone import normalise_wa_id
from conversations.whatsapp.console import simulator_payload
from conversations.whatsapp.signature import HEADER, sign_body

# The number the simulated webhooks claim to come to (any digits do in embedded mode).
SIMULATOR_PHONE_NUMBER_ID = "100000000000001"
MAX_TEXT = 4096
MAX_NAME = 256
# How many earlier messages the page shows when it connects for a number.
HISTORY_ON_CONNECT = 50


def debug_only(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.DEBUG:
            raise Http404("The simulator exists only with DJANGO_DEBUG on")
        return view(request, *args, **kwargs)

    return wrapper


@debug_only
@require_GET
def simulator_page(request: HttpRequest):
    return render(
        request,
        "conversations/simulator.html",
        {"send_url": reverse("simulator-send"), "default_number": "5511987650001"},
    )


def text_webhook(*, from_number: str, name: str, text: str, wamid: str) -> dict:
    """One inbound text in the Cloud API's webhook shape (REFERENCE.md)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "simulator",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": SIMULATOR_PHONE_NUMBER_ID,
                                "phone_number_id": SIMULATOR_PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": from_number}],
                            "messages": [
                                {
                                    "from": from_number,
                                    "id": wamid,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def _bad(reason: str) -> JsonResponse:
    return JsonResponse({"error": reason}, status=400)


@debug_only
@require_POST
def simulator_send(request: HttpRequest):
    """Build and sign the webhook for one typed message; the page posts it to the webhook."""
    if not settings.WHATSAPP_APP_SECRET:
        return JsonResponse(
            {"error": "WHATSAPP_APP_SECRET is not set: the webhook would refuse every message"},
            status=503,
        )
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return _bad("body is not JSON")
    if not isinstance(data, dict):
        return _bad("body must be a JSON object")
    raw_number, name, text = (str(data.get(key) or "") for key in ("wa_id", "name", "text"))
    try:
        wa_id = normalise_wa_id(raw_number)
    except ValueError as exc:
        return _bad(f"not a WhatsApp number: {exc}")
    text = text.strip()
    if not text:
        return _bad("type a message")
    if len(text) > MAX_TEXT or len(name) > MAX_NAME:
        return _bad(f"text is limited to {MAX_TEXT} and the name to {MAX_NAME} characters")
    # Send the digits as typed: a Brazilian mobile without its ninth digit stays that way,
    # as WhatsApp sometimes sends it, and the webhook must still find the same customer.
    from_number = "".join(ch for ch in raw_number if ch.isdigit())
    wamid = f"wamid.SIMULATOR.{uuid.uuid4().hex}"
    body = json.dumps(
        text_webhook(from_number=from_number, name=name.strip(), text=text, wamid=wamid)
    )
    return JsonResponse(
        {
            "url": reverse("whatsapp-webhook"),
            "body": body,
            "header": HEADER,
            "signature": sign_body(settings.WHATSAPP_APP_SECRET, body.encode("utf-8")),
            "wamid": wamid,
            "wa_id": wa_id,
        }
    )


def recent_messages(wa_id: str, limit: int = HISTORY_ON_CONNECT) -> list[dict]:
    """The customer's latest messages across conversations, oldest first."""
    latest = Message.objects.filter(conversation__customer__wa_id=wa_id).order_by(
        "-created_at", "-id"
    )[:limit]
    return [simulator_payload(message) for message in reversed(latest)]


class SimulatorConsumer(AsyncJsonWebsocketConsumer):
    """Forwards one customer's messages to the simulator page; refuses to exist without DEBUG."""

    group = None

    async def connect(self):
        if not settings.DEBUG:
            await self.close()
            return
        try:
            wa_id = normalise_wa_id(self.scope["url_route"]["kwargs"]["wa_id"])
        except ValueError:
            await self.close()
            return
        self.group = simulator_group(wa_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for message in await database_sync_to_async(recent_messages)(wa_id):
            await self.send_json(message)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # the page sends through HTTP, like WhatsApp does

    async def simulator_message(self, event):
        await self.send_json(event["message"])
