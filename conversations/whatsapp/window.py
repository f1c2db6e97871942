"""WhatsApp's customer-service window: free-form messages only within 24 h of the customer's last."""

from datetime import datetime, timedelta

from django.utils import timezone

# WhatsApp accepts a free-form message only within 24 h of the customer's last message; after
# that, only a pre-approved template (which we do not send).
REPLY_WINDOW = timedelta(hours=24)


def within_reply_window(last_inbound_at: datetime | None) -> bool:
    """Whether a free-form message may still go to a customer whose last message came then."""
    return last_inbound_at is not None and timezone.now() - last_inbound_at < REPLY_WINDOW
