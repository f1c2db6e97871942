"""Parse a WhatsApp Cloud API webhook body (already JSON-decoded) into typed items.

The envelope must have the Cloud API shape or the whole body is refused (`PayloadError`, 400).
Inside it, one bad message or status item is skipped and logged, and the rest of the batch is kept:
Meta would otherwise retry the whole notification for days.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from conversations.models import Message
from conversations.phone import normalise_wa_id

logger = logging.getLogger(__name__)

OBJECT = "whatsapp_business_account"
# Message.type and Message.provider_id column sizes.
TYPE_MAX = 32
WAMID_MAX = 255
# Message.media_id, media_mime_type and media_sha256 column sizes.
MEDIA_ID_MAX = 128
MIME_MAX = 100
SHA256_MAX = 100
# The media types whose file we keep; stickers are ignored (nothing to help a customer with).
MEDIA_KINDS = ("audio", "image", "document", "video")


MediaStatus = Message.MediaStatus


class PayloadError(ValueError):
    """The body is not a Cloud API webhook notification."""


# One `value.messages[]` item as Meta sends it (the keys we read; `from` is a keyword, hence this form).
RawMessage = TypedDict(
    "RawMessage",
    {"id": str, "from": str, "timestamp": str, "type": str, "text": dict[str, Any]},
    total=False,
)


@dataclass(frozen=True)
class Contact:
    wa_id: str  # normalised
    profile_name: str


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    wa_id: str  # normalised (conversations.phone): the Customer key
    type: str  # as given, even for types that do not exist yet
    text: str = ""  # what we could extract; empty for media without caption and unknown types
    from_number: str = ""  # the number exactly as WhatsApp sent it: replies go there
    profile_name: str = ""
    sent_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # Audio, image, document and video: the Cloud API's media id and what it declared.
    media_id: str = ""
    media_mime_type: str = ""
    media_sha256: str = ""

    @property
    def reply_wa_id(self) -> str:
        return self.from_number or self.wa_id

    @property
    def media_status(self) -> str:
        """Message.media_status at ingest: voice notes and photos wait for the worker, which
        shows them to the assistant; documents and videos are fetched when staff open them."""
        if not self.media_id:
            return MediaStatus.NONE
        return MediaStatus.PENDING if self.type in ("audio", "image") else MediaStatus.ON_DEMAND


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str  # sent | delivered | read | failed, or anything newer (ignored downstream)
    recipient_id: str = ""
    timestamp: datetime | None = None
    errors: list[Any] = field(default_factory=list)


@dataclass
class Notification:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    skipped: int = 0  # items dropped for missing or invalid fields


def parse_notification(body: Any) -> Notification:
    """Every entry and change of a decoded body; raises PayloadError when the envelope is wrong."""
    if not isinstance(body, dict):
        raise PayloadError("body is not a JSON object")
    if body.get("object") != OBJECT:
        raise PayloadError(f"object is not {OBJECT!r}")
    notification = Notification()
    for value in _values(body):
        contacts = [c for c in map(_contact, _list(value, "contacts")) if c]
        names = {c.wa_id: c.profile_name for c in contacts}
        notification.contacts.extend(contacts)
        for item in _list(value, "messages"):
            message = _message(item, names)
            if message is None:
                notification.skipped += 1
            else:
                notification.messages.append(message)
        for item in _list(value, "statuses"):
            status = _status(item)
            if status is None:
                notification.skipped += 1
            else:
                notification.statuses.append(status)
    return notification


def _values(body: dict) -> Iterator[dict]:
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("entry is not a list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise PayloadError("an entry is not an object")
        changes = entry.get("changes", [])
        if not isinstance(changes, list):
            raise PayloadError("changes is not a list")
        for change in changes:
            if not isinstance(change, dict):
                raise PayloadError("a change is not an object")
            value = change.get("value", {})
            if not isinstance(value, dict):
                raise PayloadError("a change value is not an object")
            yield value


def _list(value: dict, key: str) -> list:
    items = value.get(key, [])
    if items is None:
        return []
    if not isinstance(items, list):
        raise PayloadError(f"value.{key} is not a list")
    return items


def _str(mapping: Any, *keys: str) -> str:
    """A nested string, or "" when any level is missing or of the wrong type."""
    for key in keys:
        if not isinstance(mapping, dict):
            return ""
        mapping = mapping.get(key)
    return _clean(mapping) if isinstance(mapping, str) else ""


def _join(*parts: str, sep: str = "\n") -> str:
    return sep.join(part for part in parts if part)


def _contact(item: Any) -> Contact | None:
    try:
        wa_id = normalise_wa_id(_str(item, "wa_id"))
    except ValueError:
        return None
    return Contact(wa_id=wa_id, profile_name=_str(item, "profile", "name")[:256])


def _message(item: RawMessage | Any, names: dict[str, str]) -> InboundMessage | None:
    if not isinstance(item, dict):
        logger.warning("skipped a message item that is not an object")
        return None
    wamid, sender, kind = (_str(item, key).strip() for key in ("id", "from", "type"))
    if not (wamid and sender and kind) or len(wamid) > WAMID_MAX:
        logger.warning(
            "skipped message item (type=%r): id, from or type missing or invalid", kind[:TYPE_MAX]
        )
        return None
    try:
        wa_id = normalise_wa_id(sender)
    except ValueError:
        logger.warning("skipped message item (type=%r): from is not a number", kind[:TYPE_MAX])
        return None
    return InboundMessage(
        wamid=wamid,
        wa_id=wa_id,
        type=kind[:TYPE_MAX],
        text=extract_text(kind, item),
        from_number="".join(ch for ch in sender if ch.isdigit()),
        profile_name=names.get(wa_id, ""),
        sent_at=_timestamp(item.get("timestamp")),
        raw=_clean(item),
        **_media(kind, item),
    )


def _media(kind: str, item: dict) -> dict[str, str]:
    """The media id, mime type and sha256 of a media message; {} for other types, and for an
    id we could not store (too long: it is left as a message without media)."""
    if kind not in MEDIA_KINDS:
        return {}
    media_id = _str(item, kind, "id").strip()
    if not media_id or len(media_id) > MEDIA_ID_MAX:
        return {}
    return {
        "media_id": media_id,
        "media_mime_type": _str(item, kind, "mime_type").strip()[:MIME_MAX],
        "media_sha256": _str(item, kind, "sha256").strip()[:SHA256_MAX],
    }


def _status(item: Any) -> StatusUpdate | None:
    wamid, status = _str(item, "id").strip(), _str(item, "status").strip()
    if not (wamid and status) or len(wamid) > WAMID_MAX:
        logger.warning("skipped status item: id or status missing or invalid")
        return None
    errors = item.get("errors")
    return StatusUpdate(
        wamid=wamid,
        status=status,
        recipient_id=_str(item, "recipient_id"),
        timestamp=_timestamp(item.get("timestamp")),
        errors=_clean(errors) if isinstance(errors, list) else [],
    )


def extract_text(kind: str, item: dict) -> str:
    """The human-readable part of a message of any type; "" when there is none (or we don't know it)."""
    if kind == "text":
        return _str(item, "text", "body")
    if kind in ("image", "video", "sticker", "audio"):
        return _str(item, kind, "caption")
    if kind == "document":
        return _join(_str(item, "document", "caption"), _str(item, "document", "filename"))
    if kind == "location":
        return _join(_str(item, "location", "name"), _str(item, "location", "address"))
    if kind == "contacts":
        cards = item.get("contacts")
        return _join(*map(_card_name, cards if isinstance(cards, list) else []), sep=", ")
    if kind == "reaction":
        return _str(item, "reaction", "emoji")
    if kind == "interactive":
        return _str(item, "interactive", "button_reply", "title") or _str(
            item, "interactive", "list_reply", "title"
        )
    if kind == "button":
        return _str(item, "button", "text")
    if kind == "system":
        return _str(item, "system", "body")
    return ""  # unsupported, and types that do not exist yet


def _card_name(card: Any) -> str:
    return _str(card, "name", "formatted_name") or _join(
        _str(card, "name", "first_name"), _str(card, "name", "last_name"), sep=" "
    )


def _timestamp(raw: Any) -> datetime | None:
    """WhatsApp sends Unix seconds as a string; anything else is treated as unknown."""
    try:
        seconds = int(raw)
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _clean(value: Any) -> Any:
    """Strings PostgreSQL can store: JSON may carry NUL and lone surrogates (\\u0000, \\ud800)."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value
