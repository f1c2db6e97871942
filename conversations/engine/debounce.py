"""The debounce rule: a turn starts once the customer has been quiet for the window, never later
than the max wait after their oldest pending message. Times come from the database rows, so
every worker measures the same window."""

import asyncio

from django.utils import timezone

from conversations.engine import peeks
from conversations.threads import in_thread


def quiet_wait_s(peek, runtime) -> float | None:
    """Seconds until the customer has been quiet for the window (never past the max wait); zero
    or less: now. None when nothing is pending (or a person handles the conversation)."""
    if peek.oldest is None:
        return None
    now = timezone.now()
    return min(
        (peek.newest - now).total_seconds() + runtime.debounce_quiet_ms / 1000,
        (peek.oldest - now).total_seconds() + runtime.debounce_max_wait_ms / 1000,
    )


async def wait_for_quiet(conversation_id: int, runtime) -> "peeks.Peek | None":
    """Wait until the customer has been quiet for the window, never past the max wait.

    Returns the last look at the conversation, or None when nothing is pending (or a person
    handles the conversation).
    """
    while True:
        peek = await in_thread(peeks.peek)(conversation_id)
        wait = quiet_wait_s(peek, runtime)
        if wait is None:
            return None
        if wait <= 0:
            return peek
        await asyncio.sleep(wait)
