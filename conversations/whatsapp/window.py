"""WhatsApp's customer-service window: free-form messages only within 24 h of the customer's last.

Outside it the Cloud API refuses them (error 131047), so the conversation goes to a person, who
may still reach the customer with an approved template from WhatsApp's own tools.
"""

from datetime import datetime, timedelta

from django.utils import timezone

from conversations import events
from conversations.models import Conversation, handoff_fields

# WhatsApp accepts a free-form message only within 24 h of the customer's last message; after
# that, only a pre-approved template (which we do not send).
REPLY_WINDOW = timedelta(hours=24)
# The Cloud API's "Re-engagement message" error: more than 24 h since the customer last wrote.
RE_ENGAGEMENT_ERROR = 131047
# Conversation.handoff_reason of such a handoff (staff read it in Portuguese).
OUTSIDE_WINDOW_REASON = "fora da janela de 24 h"


def within_reply_window(last_inbound_at: datetime | None) -> bool:
    """Whether a free-form message may still go to a customer whose last message came then."""
    return last_inbound_at is not None and timezone.now() - last_inbound_at < REPLY_WINDOW


def is_re_engagement_error(errors) -> bool:
    """Whether Meta's error list (a failed status's `errors`, or a send's error) is 131047."""
    items = errors if isinstance(errors, list) else [errors]
    for item in items:
        code = item.get("code") if isinstance(item, dict) else item
        if str(code) == str(RE_ENGAGEMENT_ERROR):
            return True
    return False


def hand_over_outside_window(conversation_id: int, told: list | None = None) -> bool:
    """Give an open conversation the bot handles to a person, because the window has closed.

    A conditional update: one a person already handles (or a closed one) is left as it is.
    True when it changed; then the staff desk hears of it once the change commits (or through
    `told`, as events.tell_staff does for the ASGI webhook).
    """
    window = Conversation.HandoffSource.WINDOW
    changed = Conversation.objects.filter(
        pk=conversation_id,
        status=Conversation.Status.OPEN,
        handler=Conversation.Handler.BOT,
    ).update(updated_at=timezone.now(), **handoff_fields(OUTSIDE_WINDOW_REASON, window))
    if changed:
        events.tell_staff(events.staff_event("handoff", conversation_id, source=window), told)
    return bool(changed)
