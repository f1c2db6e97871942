"""Build WhatsApp Cloud API webhook bodies the way Meta sends them, and sign them.

    body = encode(notification([text_message("5511987654321", "oi")]))
    client.post(URL, data=body, content_type="application/json", headers=signed_headers(SECRET, body))

Every builder returns plain dicts, so a test can break any field it wants before encoding.
"""

import itertools
import json
import time
from typing import Any

from conversations.whatsapp.signature import HEADER, sign_body

PHONE_NUMBER_ID = "106540352242922"
_counter = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.TEST{time.time_ns()}{next(_counter):06d}"


def _message(sender: str, kind: str, wamid: str | None, timestamp: int | None, **fields) -> dict:
    return {
        "from": sender,
        "id": wamid or new_wamid(),
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "type": kind,
        **fields,
    }


def text_message(sender: str, body: str, *, wamid=None, timestamp=None) -> dict:
    return _message(sender, "text", wamid, timestamp, text={"body": body})


def media_message(
    sender: str,
    kind: str,
    *,
    caption=None,
    filename=None,
    wamid=None,
    media_id="1234567890",
    mime_type="application/octet-stream",
    sha256=None,
) -> dict:
    """image, audio, video, document or sticker."""
    media: dict[str, Any] = {"id": media_id, "mime_type": mime_type}
    if sha256 is not None:
        media["sha256"] = sha256
    if caption is not None:
        media["caption"] = caption
    if filename is not None:
        media["filename"] = filename
    return _message(sender, kind, wamid, None, **{kind: media})


def location_message(sender: str, *, name="", address="", wamid=None) -> dict:
    location = {"latitude": -23.5505, "longitude": -46.6333, "name": name, "address": address}
    return _message(sender, "location", wamid, None, location=location)


def contacts_message(sender: str, names: list[str], *, wamid=None) -> dict:
    cards = [
        {"name": {"formatted_name": name, "first_name": name.split()[0]}, "phones": []}
        for name in names
    ]
    return _message(sender, "contacts", wamid, None, contacts=cards)


def reaction_message(sender: str, emoji: str, *, message_id="wamid.REACTED", wamid=None) -> dict:
    return _message(
        sender, "reaction", wamid, None, reaction={"message_id": message_id, "emoji": emoji}
    )


def interactive_message(sender: str, title: str, *, kind="button_reply", wamid=None) -> dict:
    """kind: button_reply or list_reply."""
    reply = {"id": "choice-1", "title": title}
    if kind == "list_reply":
        reply["description"] = "descrição"
    return _message(sender, "interactive", wamid, None, interactive={"type": kind, kind: reply})


def button_message(sender: str, text: str, *, wamid=None) -> dict:
    return _message(sender, "button", wamid, None, button={"payload": "PAYLOAD", "text": text})


def unsupported_message(sender: str, *, wamid=None) -> dict:
    errors = [{"code": 131051, "title": "Message type unknown"}]
    return _message(sender, "unsupported", wamid, None, errors=errors)


def future_message(sender: str, kind: str = "hologram", *, wamid=None) -> dict:
    """A type that does not exist yet, with a payload we have never seen."""
    return _message(sender, kind, wamid, None, **{kind: {"frames": [1, 2, 3], "body": "?"}})


def status(wamid: str, state: str, *, recipient="5511987654321", errors=None, timestamp=None):
    item = {
        "id": wamid,
        "status": state,
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "recipient_id": recipient,
    }
    if errors is not None:
        item["errors"] = errors
    return item


def contact(wa_id: str, name: str) -> dict:
    return {"profile": {"name": name}, "wa_id": wa_id}


def change(messages=(), statuses=(), contacts=None) -> dict:
    """One `changes[]` item; contacts default to one per distinct sender, named after it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    if contacts is None:
        senders = dict.fromkeys(m["from"] for m in messages if isinstance(m, dict) and "from" in m)
        contacts = [contact(sender, f"Cliente {sender[-4:]}") for sender in senders]
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"value": value, "field": "messages"}


def notification(messages=(), statuses=(), contacts=None, *, changes=None) -> dict:
    """A whole POST body with one entry; pass `changes` for several."""
    if changes is None:
        changes = [change(messages, statuses, contacts)]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": list(changes)}],
    }


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def signed_headers(secret: bytes | str, body: bytes) -> dict[str, str]:
    """Headers for the test Client / requests: `headers=signed_headers(secret, body)`."""
    return {HEADER: sign_body(secret, body)}


def post_signed_text(sender: str, text: str, secret: str) -> int:
    """Deliver one signed text message to the webhook through Django's test client (the caller
    sets WHATSAPP_APP_SECRET to `secret`); returns the answer's status."""
    from django.test import Client

    body = encode(notification([text_message(sender, text)]))
    response = Client().post(
        "/webhooks/whatsapp/",
        data=body,
        content_type="application/json",
        headers=signed_headers(secret, body),
    )
    return response.status_code
