"""The LLM's input, built from our own transcript: the database is the source of truth, so history
survives restarts and model changes."""

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
    a message without text (a photo, say) as its type in brackets."""
    items = []
    for message in messages:
        role = "user" if message.direction == Message.Direction.INBOUND else "assistant"
        items.append({"role": role, "content": message.text or f"[{message.type}]"})
    return items
