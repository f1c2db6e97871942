"""The assistant's typing state while a turn runs: WhatsApp's typing indicator on the customer's
newest message, refreshed before WhatsApp drops it, and the staff desk's "typing…" on and off."""

import asyncio
import logging
from collections.abc import Callable

from conversations.events import anotify_staff
from conversations.models import Message
from conversations.threads import slow_io_executor
from conversations.whatsapp.sender import send_typing_indicator

logger = logging.getLogger(__name__)

# WhatsApp drops the typing indicator after ~25 s; refresh it before that while a turn runs.
TYPING_REFRESH_S = 20.0
# The desk's typing events in flight: a reference keeps each task alive until it is done.
_background: set = set()


def _show_typing(message: Message) -> None:
    try:
        send_typing_indicator(message)
    except Exception as exc:  # best effort, never fails the turn
        logger.info("typing indicator failed: %s", type(exc).__name__)


class Typing:
    """Shows "typing…" on `newest()` (the batch grows when the turn takes in new messages)."""

    def __init__(self, conversation_id: int, newest: Callable[[], Message]):
        self.conversation_id = conversation_id
        self.newest = newest
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Show the typing indicator on the newest message now and every TYPING_REFRESH_S until
        stop(). Best effort and nothing waits for it: a plain job on the slow-I/O pool (it
        touches no database) and a timer, not a task and a thread hop per turn."""
        slow_io_executor().submit(_show_typing, self.newest())
        if self._timer is None:  # the desk shows "typing…" once per turn, not per refresh
            self._tell_staff("on")
        self._timer = asyncio.get_running_loop().call_later(TYPING_REFRESH_S, self.start)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._tell_staff("off")

    def _tell_staff(self, state: str) -> None:
        task = asyncio.ensure_future(anotify_staff("typing", self.conversation_id, state=state))
        _background.add(task)
        task.add_done_callback(_background.discard)
