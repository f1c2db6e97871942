"""The LLM's input, built from our own transcript: the database is the source of truth, so history
survives restarts and model changes. Media read as conversations.assistant.media_input says."""

from conversations.assistant.media_input import message_text, user_content
from conversations.engine import claims
from conversations.models import Message, Turn


def transcript(
    turn: Turn, batch: list[Message], window: int, history: list[Message] | None = None
) -> list[dict]:
    """Our own transcript (the database is the source of truth): history, then the batch.

    `history`: the turn's history when the claim read it already (PostgreSQL), else None and it
    is read here.
    """
    if history is None:
        history = claims.history(turn.conversation_id, turn, [m.pk for m in batch], window)
    return transcript_items([*history, *batch])


def transcript_items(messages: list[Message]) -> list[dict]:
    """The Responses API's input items: the customer's messages as `user`, ours as `assistant`;
    a message without text as its type in brackets, media as their placeholder."""
    items = []
    for message in messages:
        if message.direction == Message.Direction.INBOUND:
            items.append({"role": "user", "content": message_text(message)})
        else:
            items.append({"role": "assistant", "content": message.text or f"[{message.type}]"})
    return items


def with_batch_media(
    items: list[dict], batch: list[Message], images: dict[int, tuple[bytes, str]], runtime
) -> list[dict]:
    """The transcript whose tail (the batch, always last) reads the media the media step
    prepared: transcripts, placeholders, and the batch's photos as input_image parts when the
    runtime settings allow. Earlier photos stay text: they are never sent again."""
    head = items[: len(items) - len(batch)]
    tail = []
    for message in batch:
        text = message_text(message)
        photo = images.get(message.pk) if runtime.images_enabled else None
        content = user_content(text, [photo] if photo else [], runtime.image_detail)
        tail.append({"role": "user", "content": content})
    return head + tail
