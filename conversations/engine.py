"""The turn loop: at most one turn per conversation at a time, bursts coalesced, never an error
reply caused by concurrency, nothing lost (ARCHITECTURE.md "Flow of one message").

A wake only ever *tries* the conversation lock: when another worker holds it, that holder takes
the new message in its loop, and after releasing it checks once more, so nothing is stranded.
Blocking work (ORM, Redis lock calls, CRM, sender) runs in threads; the event loop only waits.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from conversations import claims, events
from conversations.assistant import AssistantError, AssistantRequest, generate_reply
from conversations.locks import ConversationLock, LockUnavailable, renewed
from conversations.models import Conversation, Message, Turn
from conversations.runtime import get_runtime
from conversations.threads import in_io_thread, in_thread, slow_io_executor
from conversations.whatsapp import (
    announce_sent,
    hand_over,
    queue_text,
    send_text,
    send_typing_indicator,
    sent_statements,
)
from crm_gateway.context import CustomerContext, build_customer_context, claim_notice

logger = logging.getLogger(__name__)

# WhatsApp drops the typing indicator after ~25 s; refresh it before that while a turn runs.
TYPING_REFRESH_S = 20.0
Outcome = Turn.Outcome
SUPERSEDE = "supersede"  # _deliver's answer when new messages should be taken in first


def _ms(since: float) -> int:
    return max(0, round((time.monotonic() - since) * 1000))


async def run_turns(conversation_id: int, on_last_look: Callable[[], None] | None = None) -> None:
    """Answer every pending inbound message of the conversation, if no one else is doing it.

    on_last_look is called on the event loop right before the last look for pending messages
    (after the release) goes to its thread; it is not called when another worker holds the lock.
    """
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

    peek: claims.Peek
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
    waited_ms = _ms(started)
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
        peek = claims.peek(conversation_id)
    wait = _quiet_wait_s(peek, runtime)
    if wait is None:
        return None
    if wait > 0:
        return Look(peek, started)
    begun = _begin(conversation_id, lock_wait_ms, _ms(started), runtime, started)
    return None if begun is None else Look(peek, started, begun)


def _quiet_wait_s(peek, runtime) -> float | None:
    """How long until the customer has been quiet for the window (never past the max wait);
    None when nothing is pending (or a person handles the conversation). Times come from the
    database rows, so every worker measures the same window."""
    if peek.oldest is None:
        return None
    now = timezone.now()
    return min(
        (peek.newest - now).total_seconds() + runtime.debounce_quiet_ms / 1000,
        (peek.oldest - now).total_seconds() + runtime.debounce_max_wait_ms / 1000,
    )


def _release_and_check(lock: ConversationLock, conversation_id: int) -> bool:
    lock.release()  # never raises; an expired lock is simply gone
    return claims.has_pending(conversation_id)


async def before_release(conversation_id: int) -> None:
    """Hook between the last pending check and the lock release (tests inject the race here)."""


async def _turn(
    conversation_id: int, keeper, lock_wait_ms: int, look: "Look | claims.Peek"
) -> "claims.Peek | None":
    """One turn over the pending messages. Returns the next look at the conversation, or None
    when the loop must stop (nothing pending, lock lost, turn crashed)."""
    runtime = get_runtime()
    if isinstance(look, claims.Peek):  # the previous turn's last look: this turn starts now
        look = await in_thread(_look)(conversation_id, runtime, 0, time.monotonic(), look)
    while look is not None and look.begun is None:
        await asyncio.sleep(max(0.0, _quiet_wait_s(look.peek, runtime)))
        look = await in_thread(_look)(conversation_id, runtime, lock_wait_ms, look.started)
    if look is None:
        return None
    started = look.started
    run = TurnRun(look.peek.conversation, look.begun, keeper, runtime, started)
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
        _ms(started),
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
    if begun.history is not None:
        begun.transcript = _transcript_items([*begun.history, *begun.batch])
        return begun
    try:
        begun.transcript = transcript(begun.turn, begun.batch, window)
    except Exception as exc:
        _crashed(begun.turn, len(begun.batch), started, exc)
        return None
    return begun


def _crashed(turn: Turn, batch_size: int, started: float, exc: Exception) -> None:
    """A bug or an outage mid-turn: the batch stays claimed and the sweeper retries it once the
    claim outlives the lock TTL. The loop stops rather than spin on the same failure."""
    logger.error("conversation %s: turn %s crashed", turn.conversation_id, turn.pk, exc_info=exc)
    claims.finish_turn(
        turn, started=started, batch_size=batch_size, detail=f"crashed: {type(exc).__name__}"
    )


async def _debounce(conversation_id: int, runtime) -> "claims.Peek | None":
    """Wait until the customer has been quiet for the window, never past the max wait.

    Returns the last look at the conversation, or None when nothing is pending (or a person
    handles the conversation).
    """
    while True:
        peek = await in_thread(claims.peek)(conversation_id)
        wait = _quiet_wait_s(peek, runtime)
        if wait is None:
            return None
        if wait <= 0:
            return peek
        await asyncio.sleep(wait)


def _show_typing(message: Message) -> None:
    try:
        send_typing_indicator(message)
    except Exception as exc:  # best effort, never fails the turn
        logger.info("typing indicator failed: %s", type(exc).__name__)


class TurnRun:
    """The work of one turn once its batch is claimed: context, reply (superseded while the
    customer keeps writing, up to the cap), then exactly one message to the customer."""

    def __init__(self, conversation, begun: "claims.Begun", keeper, runtime, started: float):
        self.conversation: Conversation = conversation
        self.turn: Turn = begun.turn
        self.batch: list[Message] = begun.batch
        self.transcript: list[dict] = begun.transcript
        self.keeper = keeper
        self.runtime = runtime
        self.started = started
        self.supersede_count = 0
        self.debounce_ms = self.turn.debounce_wait_ms
        self.crm_ms = 0
        self.llm_ms = 0
        self._typing: asyncio.TimerHandle | None = None

    def start_typing(self) -> None:
        """Show the typing indicator on the newest message now and every TYPING_REFRESH_S until
        stop_typing(). Best effort and nothing waits for it: a plain job on the slow-I/O pool
        (it touches no database) and a timer, not a task and a thread hop per turn."""
        slow_io_executor().submit(_show_typing, self.batch[-1])
        self._typing = asyncio.get_running_loop().call_later(TYPING_REFRESH_S, self.start_typing)

    def stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()

    async def answer(self) -> tuple[str, "claims.Peek | None"]:
        while True:
            context = await self._context()
            request = AssistantRequest.for_turn(self.runtime, self.transcript, context)
            started = time.monotonic()
            try:
                reply = (await generate_reply(request) or "").strip()
                error = "" if reply else "assistant failed: empty reply"
            except AssistantError as exc:
                reply, error = "", f"assistant failed: {exc.reason}"
            except Exception as exc:  # a bug in the assistant must not lose the batch either
                logger.exception("conversation %s: assistant crashed", self.turn.conversation_id)
                reply, error = "", f"assistant failed: {type(exc).__name__}"
            self.llm_ms += _ms(started)
            if self.keeper.lost.is_set():
                return await in_thread(self._finish)(
                    Outcome.LOST_LOCK, "lock lost during the reply"
                )
            outcome, peek = await in_thread(self._deliver)(reply, error, self._may_supersede())
            if outcome is SUPERSEDE:
                if await self._supersede():
                    continue
                outcome, peek = await in_thread(self._deliver)(reply, error, False)
            if outcome == Outcome.LOST_LOCK:
                self.keeper.lost.set()
            return outcome, peek

    async def _context(self) -> CustomerContext:
        started = time.monotonic()
        texts = [m.text for m in self.batch if m.text]
        conversation_id = self.turn.conversation_id
        try:
            context = await in_io_thread(build_customer_context)(conversation_id, texts)
        except Exception as exc:  # the contract says it never raises; reply anyway if it does
            logger.warning(
                "conversation %s: context failed: %s", conversation_id, type(exc).__name__
            )
            context = CustomerContext(document_status="unknown", masked_document="", crm_ok=False)
        self.crm_ms += _ms(started)
        for outage_id, text in context.notices:
            await in_io_thread(_send_notice)(self.conversation, outage_id, text, self.turn)
        return context

    def _may_supersede(self) -> bool:
        """Supersede is on and under its cap (otherwise new messages form the next turn)."""
        return self.runtime.supersede_enabled and self.supersede_count < self.runtime.supersede_cap

    async def _supersede(self) -> bool:
        """New messages while the reply was prepared: take them into this batch; regenerate."""
        started = time.monotonic()
        await _debounce(self.turn.conversation_id, self.runtime)
        self.debounce_ms += _ms(started)
        more, self.transcript = await in_thread(self._claim_more)()
        if not more:
            return False
        self.batch = self.batch + more
        self.supersede_count += 1
        return True

    def _claim_more(self) -> tuple[list[Message], list[dict]]:
        more = claims.claim_pending(self.turn)
        window = self.runtime.history_window_messages
        return more, transcript(self.turn, self.batch + more, window) if more else self.transcript

    def _fields(self, outcome: str, detail: str) -> dict:
        return {
            "outcome": outcome,
            "detail": detail[:255],
            "batch_size": len(self.batch),
            "supersede_count": self.supersede_count,
            "debounce_wait_ms": self.debounce_ms,
            "crm_ms": self.crm_ms,
            "llm_ms": self.llm_ms,
        }

    def _finish(self, outcome: str, detail: str, batch_state: str = "", **settle):
        """Record the end of the turn; returns (outcome, the loop's next look)."""
        if outcome == Outcome.LOST_LOCK:
            # Nothing sent: the batch stays claimed and the sweeper re-wakes the conversation
            # once the claim outlives the lock TTL.
            logger.warning(
                "conversation %s: turn %s: %s", self.turn.conversation_id, self.turn.pk, detail
            )
        peek = claims.settle(
            self.turn,
            batch_state=batch_state,
            started=self.started,
            **settle,
            **self._fields(outcome, detail),
        )
        return outcome, peek

    def _still_ours(self, claims_intact: bool) -> bool:
        """Right before sending: no claim was taken back, and renewing the lock now succeeds."""
        try:
            return claims_intact and self.keeper.lock.renew()
        except LockUnavailable:  # unknown whether we still hold it: sending could answer twice
            return False

    def _deliver(self, reply: str, error: str, may_supersede: bool):
        """Send the one message of this turn and record it, in one unit of work (a thread).

        The reply, or on an assistant failure the fallback once, after which a person handles
        the conversation. Returns SUPERSEDE instead when new messages should be taken in.
        """
        state = claims.after_reply(self.turn, len(self.batch))
        if state.new_pending and may_supersede and not error:
            return SUPERSEDE, None
        if not self._still_ours(state.claims_intact):
            return self._finish(Outcome.LOST_LOCK, "lock or claim lost before sending")
        if state.handler != Conversation.Handler.BOT:
            return self._finish(
                Outcome.HUMAN, "a person took over during the turn", Message.State.SKIPPED
            )
        if error:
            outcome, detail, batch_state = Outcome.FALLBACK, error, Message.State.FAILED
            text, kind = self.runtime.fallback_reply, Message.Kind.FALLBACK
        else:
            outcome, detail, batch_state = Outcome.ANSWERED, "", Message.State.ANSWERED
            text, kind = reply, Message.Kind.REPLY
        message = provider_id = None
        try:
            # Committed as queued before the call: a crash mid-send leaves a trace.
            message = queue_text(self.conversation, text, kind=kind, turn=self.turn)
            provider_id = hand_over(self.conversation, message)
        except Exception as exc:  # SendError after the sender's retries
            logger.warning(
                "conversation %s: %s not sent: %s",
                self.turn.conversation_id,
                kind,
                type(exc).__name__,
            )
            if not error:
                outcome, detail = Outcome.HUMAN, f"reply not sent: {type(exc).__name__}"
                batch_state = Message.State.FAILED
        failed = batch_state == Message.State.FAILED
        sent = (
            [] if provider_id is None else sent_statements(self.conversation, message, provider_id)
        )
        # The sent record and the end of the turn in one commit.
        result = self._finish(
            outcome,
            detail,
            batch_state,
            reason=detail if failed else "",
            handoff=detail if failed else "",
            first=sent,
        )
        if sent:
            announce_sent(self.conversation, message)
        return result


def _send_notice(conversation: Conversation, outage_id: int, text: str, turn: Turn) -> None:
    """An outage notice, once per conversation per outage (claim_notice decides)."""
    try:
        if claim_notice(outage_id, conversation.pk):
            send_text(conversation, text, kind=Message.Kind.NOTICE, turn=turn)
    except Exception as exc:  # the reply still goes out
        logger.warning(
            "conversation %s: outage notice %s not sent: %s",
            conversation.pk,
            outage_id,
            type(exc).__name__,
        )


def transcript(turn: Turn, batch: list[Message], window: int) -> list[dict]:
    """Our own transcript (the database is the source of truth): history, then the batch."""
    earlier = claims.history(turn.conversation_id, turn, [m.pk for m in batch], window)
    return _transcript_items([*earlier, *batch])


def _transcript_items(messages: list[Message]) -> list[dict]:
    items = []
    for message in messages:
        role = "user" if message.direction == Message.Direction.INBOUND else "assistant"
        items.append({"role": role, "content": message.text or f"[{message.type}]"})
    return items
