"""Handing a conversation to the staff: what changes on the conversation, the message the
customer gets (the runtime settings' text, plus when the staff are back outside business hours)
and the event that tells the staff desk.

The engine applies it inside a turn's one commit (turn_end.settle with handoff=...), so the
handoff message is the turn's one message, and from then on the bot answers no more messages of
that conversation (claims only take a bot-handled conversation's messages).
"""

from conversations import events
from conversations.business_hours import closed_text, staff_back
from conversations.models import Conversation

Source = Conversation.HandoffSource


def handoff_text(runtime, now=None) -> str:
    """The handoff message, with the after-hours text when the staff are out."""
    text = runtime.handoff_message.strip()
    when = staff_back(runtime, now)
    if when:
        text = f"{text} {closed_text(runtime.handoff_closed_template, when)}"
    return text


def announce(conversation_id: int, source: str) -> None:
    """Tell the staff desk, once the handoff has committed (ids and states only)."""
    events.notify_staff_on_commit("handoff", conversation_id, source=source)
