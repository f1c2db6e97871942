"""The turn loop: at most one turn per conversation at a time, bursts coalesced, never an error
reply caused by concurrency, nothing lost (ARCHITECTURE.md "Flow of one message").

A wake only ever *tries* the conversation lock: when another worker holds it, that holder takes
the new message in its loop, and after releasing it checks once more, so nothing is stranded.
Blocking work (ORM, Redis lock calls, CRM, sender) runs in threads; the event loop only waits.
What a turn does once its batch is claimed (context, reply, send) is conversations.engine.turn_run.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from conversations import events, log_context, metrics
from conversations.engine import claims, peeks, turn_end
from conversations.engine.debounce import quiet_wait_s
from conversations.engine.locks import ConversationLock, renewed
from conversations.engine.transcript import transcript
from conversations.engine.turn_run import Outcome, TurnRun, ms_since
from conversations.models import Turn
from conversations.runtime import get_runtime
from conversations.threads import in_thread

logger = logging.getLogger(__name__)


async def run_turns(conversation_id: int, on_last_look: Callable[[], None] | None = None) -> None:
    """Answer every pending inbound message of the conversation, if no one else is doing it.

    on_last_look is called on the event loop right before the last look for pending messages
    (after the release) goes to its thread; it is not called when another worker holds the lock.
    """
    with log_context.bound(conversation_id=conversation_id, turn_id=None):
        await _run_turns(conversation_id, on_last_look)


async def _run_turns(conversation_id: int, on_last_look: Callable[[], None] | None) -> None:
    lock, acquired, lock_wait_ms, look = await in_thread(_acquire_and_look)(conversation_id)
    if not acquired:
        return  # the holder's loop takes our message
    try:
        async with renewed(lock) as keeper:
            while look is not None and not keeper.lost.is_set():
                look = await _turn(conversation_id, keeper, lock_wait_ms, look)
                lock_wait_ms = 0
            await before_release(conversation_id)
    finally:
        # A message stored after our last check but before the release found the lock busy
        # and was left to us: look once more after releasing, and wake the conversation.
        if on_last_look is not None:
            on_last_look()
        left_behind = await in_thread(_release_and_check)(lock, conversation_id)
    if left_behind:
        await events.asend_wake(conversation_id)


@dataclass
class Look:
    """A look at a conversation with pending messages, and the turn begun on them when the
    customer was already quiet (begun in the same unit of work: one thread hop fewer)."""

    peek: peeks.Peek
    started: float  # monotonic: when this turn began waiting (for debounce_wait_ms, total_ms)
    begun: "claims.Begun | None" = None


def _acquire_and_look(conversation_id: int):
    # In a thread get_runtime() reloads a stale snapshot before answering (on the event loop it
    # would serve the old one once), so a saved change reaches the very next turn.
    runtime = get_runtime()
    lock = ConversationLock(conversation_id, ttl_s=runtime.lock_ttl_seconds)
    started = time.monotonic()
    if not lock.try_acquire():
        return lock, False, 0, None
    waited_ms = ms_since(started)
    metrics.observe(metrics.LOCK_WAIT, waited_ms / 1000)
    try:
        return lock, True, waited_ms, _look(conversation_id, runtime, waited_ms, started)
    except Exception:
        lock.release()
        raise


def _look(conversation_id: int, runtime, lock_wait_ms: int, started: float, peek=None):
    """Peek (unless given) and, if the customer is already quiet, begin the turn.

    None when there is nothing to do: nothing pending, a person handles the conversation, or
    nothing was left to claim.
    """
    if peek is None:
        peek = peeks.peek(conversation_id)
    wait = quiet_wait_s(peek, runtime)
    if wait is None:
        return None
    if wait > 0:
        return Look(peek, started)
    begun = _begin(conversation_id, lock_wait_ms, ms_since(started), runtime, started)
    return None if begun is None else Look(peek, started, begun)


def _release_and_check(lock: ConversationLock, conversation_id: int) -> bool:
    lock.release()  # never raises; an expired lock is simply gone
    return claims.has_pending(conversation_id)


async def before_release(conversation_id: int) -> None:
    """Hook between the last pending check and the lock release (tests inject the race here)."""


async def _turn(
    conversation_id: int, keeper, lock_wait_ms: int, look: "Look | peeks.Peek"
) -> "peeks.Peek | None":
    """One turn over the pending messages. Returns the next look at the conversation, or None
    when the loop must stop (nothing pending, lock lost, turn crashed)."""
    runtime = get_runtime()
    if isinstance(look, peeks.Peek):  # the previous turn's last look: this turn starts now
        look = await in_thread(_look)(conversation_id, runtime, 0, time.monotonic(), look)
    while look is not None and look.begun is None:
        await asyncio.sleep(max(0.0, quiet_wait_s(look.peek, runtime)))
        look = await in_thread(_look)(conversation_id, runtime, lock_wait_ms, look.started)
    if look is None:
        return None
    started = look.started
    run = TurnRun(look.peek.conversation, look.begun, keeper, runtime, started)
    log_context.bind(turn_id=run.turn.pk)  # until the next turn, or run_turns' end
    run.start_typing()
    try:
        outcome, peek = await run.answer()
    except Exception as exc:
        await in_thread(_crashed)(run.turn, len(run.batch), started, exc)
        return None
    finally:
        run.stop_typing()
    logger.info(
        "conversation %s: turn %s %s (batch %d, superseded %d, crm %d ms, llm %d ms, total %d ms)",
        conversation_id,
        run.turn.pk,
        outcome,
        len(run.batch),
        run.supersede_count,
        run.crm_ms,
        run.llm_ms,
        ms_since(started),
    )
    return None if outcome == Outcome.LOST_LOCK else peek


def _begin(conversation_id: int, lock_wait_ms: int, debounce_wait_ms: int, runtime, started):
    window = runtime.history_window_messages
    begun = claims.begin_turn(
        conversation_id,
        lock_wait_ms=lock_wait_ms,
        debounce_wait_ms=debounce_wait_ms,
        history_window=window,
    )
    if begun is None:
        return None
    try:
        begun.transcript = transcript(begun.turn, begun.batch, window, begun.history)
    except Exception as exc:
        _crashed(begun.turn, len(begun.batch), started, exc)
        return None
    return begun


def _crashed(turn: Turn, batch_size: int, started: float, exc: Exception) -> None:
    """A bug or an outage mid-turn: the batch stays claimed and the sweeper retries it once the
    claim outlives the lock TTL. The loop stops rather than spin on the same failure."""
    logger.error("conversation %s: turn %s crashed", turn.conversation_id, turn.pk, exc_info=exc)
    turn_end.finish_turn(
        turn, started=started, batch_size=batch_size, detail=f"crashed: {type(exc).__name__}"
    )
