"""The turn loop: at most one turn per conversation at a time, bursts coalesced, never an error
reply caused by concurrency, nothing lost (ARCHITECTURE.md "Flow of one message").

A wake only ever *tries* the conversation lock: when another worker holds it, that holder takes
the new message in its loop, and after releasing it checks once more, so nothing is stranded.
Blocking work (ORM, Redis lock calls, CRM, sender) runs in threads; the event loop only waits.
"""

import asyncio
import logging
import time

from django.utils import timezone

from conversations import claims, events
from conversations.assistant import AssistantError, AssistantRequest, generate_reply
from conversations.claims import in_thread
from conversations.locks import ConversationLock, renewed
from conversations.models import Conversation, Message, Turn
from conversations.runtime import get_runtime
from conversations.whatsapp import send_text, send_typing_indicator
from crm_gateway.context import CustomerContext, build_customer_context, claim_notice

logger = logging.getLogger(__name__)

# WhatsApp drops the typing indicator after ~25 s; refresh it before that while a turn runs.
TYPING_REFRESH_S = 20.0
Outcome = Turn.Outcome


def _ms(since: float) -> int:
    return max(0, round((time.monotonic() - since) * 1000))


async def run_turns(conversation_id: int) -> None:
    """Answer every pending inbound message of the conversation, if no one else is doing it."""
    started = time.monotonic()
    runtime = get_runtime()
    lock = ConversationLock(conversation_id, ttl_s=runtime.lock_ttl_seconds)
    if not await in_thread(lock.try_acquire)():
        return  # the holder's loop takes our message
    lock_wait_ms = _ms(started)
    try:
        async with renewed(lock) as keeper:
            while not keeper.lost.is_set() and await _turn(conversation_id, keeper, lock_wait_ms):
                lock_wait_ms = 0
            await before_release(conversation_id)
    finally:
        await in_thread(lock.release)()  # never raises; an expired lock is simply gone
    # A message stored after our last check but before the release found the lock busy and
    # was left to us: wake the conversation again (whoever gets the wake takes it).
    if await in_thread(claims.has_pending)(conversation_id):
        await events.asend_wake(conversation_id)


async def before_release(conversation_id: int) -> None:
    """Hook between the last pending check and the lock release (tests inject the race here)."""


async def _turn(conversation_id: int, keeper, lock_wait_ms: int) -> bool:
    """One turn over the pending messages. Returns False when there was nothing to do."""
    runtime = get_runtime()
    if await in_thread(claims.handler_of)(conversation_id) != Conversation.Handler.BOT:
        await in_thread(claims.skip_pending)(conversation_id)
        return False
    started = time.monotonic()
    if not await _debounce(conversation_id, runtime):
        return False
    turn = await in_thread(claims.start_turn)(
        conversation_id, lock_wait_ms=lock_wait_ms, debounce_wait_ms=_ms(started)
    )
    batch = await in_thread(claims.claim_pending)(turn)
    if not batch:
        await in_thread(claims.finish_turn)(turn, detail="nothing left to claim")
        return False
    turn_run = TurnRun(conversation_id, turn, batch, keeper, runtime)
    typing = asyncio.create_task(turn_run.keep_typing())
    try:
        outcome, detail = await turn_run.answer()
    except Exception as exc:
        # A bug or an outage mid-turn: the batch stays claimed; the sweeper retries it once the
        # claim outlives the lock TTL. Stop this loop rather than spin on the same failure.
        logger.exception("conversation %s: turn %s crashed", conversation_id, turn.pk)
        await in_thread(claims.finish_turn)(
            turn, batch_size=len(turn_run.batch), detail=f"crashed: {type(exc).__name__}"
        )
        return False
    finally:
        typing.cancel()
    await in_thread(claims.finish_turn)(
        turn,
        outcome=outcome,
        detail=detail[:255],
        batch_size=len(turn_run.batch),
        supersede_count=turn_run.supersede_count,
        debounce_wait_ms=turn.debounce_wait_ms + turn_run.debounce_ms,
        crm_ms=turn_run.crm_ms,
        llm_ms=turn_run.llm_ms,
        total_ms=_ms(started),
    )
    logger.info(
        "conversation %s: turn %s %s (batch %d, superseded %d, crm %d ms, llm %d ms, total %d ms)",
        conversation_id,
        turn.pk,
        outcome,
        len(turn_run.batch),
        turn_run.supersede_count,
        turn_run.crm_ms,
        turn_run.llm_ms,
        _ms(started),
    )
    return outcome not in (Outcome.LOST_LOCK,)


async def _debounce(conversation_id: int, runtime) -> bool:
    """Wait until the customer has been quiet for the window, never past the max wait.

    Returns False when nothing is pending. Times come from the database rows, so every
    worker measures the same window.
    """
    quiet = runtime.debounce_quiet_ms / 1000
    max_wait = runtime.debounce_max_wait_ms / 1000
    while True:
        oldest, newest = await in_thread(claims.pending_span)(conversation_id)
        if oldest is None:
            return False
        now = timezone.now()
        deadline = min(
            (newest - now).total_seconds() + quiet, (oldest - now).total_seconds() + max_wait
        )
        if deadline <= 0:
            return True
        await asyncio.sleep(deadline)


class TurnRun:
    """The work of one turn once its batch is claimed: context, reply (superseded while the
    customer keeps writing, up to the cap), then exactly one message to the customer."""

    def __init__(self, conversation_id: int, turn: Turn, batch: list[Message], keeper, runtime):
        self.conversation_id = conversation_id
        self.turn = turn
        self.batch = batch
        self.keeper = keeper
        self.runtime = runtime
        self.supersede_count = 0
        self.debounce_ms = 0
        self.crm_ms = 0
        self.llm_ms = 0

    async def keep_typing(self) -> None:
        while True:
            try:
                await in_thread(send_typing_indicator)(self.batch[-1])
            except Exception as exc:  # best effort, never fails the turn
                logger.info("typing indicator failed: %s", type(exc).__name__)
            await asyncio.sleep(TYPING_REFRESH_S)

    async def answer(self) -> tuple[str, str]:
        conversation = await in_thread(claims.load_conversation)(self.conversation_id)
        while True:
            context = await self._context(conversation)
            request = await in_thread(build_request)(self.turn, self.batch, context, self.runtime)
            started = time.monotonic()
            try:
                reply = (await generate_reply(request) or "").strip()
                error = "" if reply else "empty reply"
            except AssistantError as exc:
                reply, error = "", f"assistant failed: {exc.reason}"
            except Exception as exc:  # a bug in the assistant must not lose the batch either
                logger.exception("conversation %s: assistant crashed", self.conversation_id)
                reply, error = "", f"assistant failed: {type(exc).__name__}"
            self.llm_ms += _ms(started)
            if self.keeper.lost.is_set():
                return self._lost("lock lost during the reply")
            if error:
                return await self._fallback(conversation, error)
            if not await self._supersede():
                break
        return await self._send(conversation, reply)

    async def _context(self, conversation: Conversation) -> CustomerContext:
        started = time.monotonic()
        texts = [m.text for m in self.batch if m.text]
        try:
            context = await in_thread(build_customer_context)(self.conversation_id, texts)
        except Exception as exc:  # the contract says it never raises; reply anyway if it does
            logger.warning(
                "conversation %s: context failed: %s", self.conversation_id, type(exc).__name__
            )
            context = CustomerContext(
                document_status="unknown",
                masked_document="",
                installation_points=[],
                crm_ok=False,
                active_outages=[],
                notices=[],
            )
        self.crm_ms += _ms(started)
        for outage_id, text in context.notices:
            await in_thread(_send_notice)(conversation, outage_id, text, self.turn)
        return context

    async def _supersede(self) -> bool:
        """New messages while the reply was prepared: take them into this batch and regenerate."""
        if not await in_thread(claims.has_pending)(self.conversation_id):
            return False
        if not self.runtime.supersede_enabled or self.supersede_count >= self.runtime.supersede_cap:
            return False  # they form the next turn
        started = time.monotonic()
        await _debounce(self.conversation_id, self.runtime)
        self.debounce_ms += _ms(started)
        more = await in_thread(claims.claim_pending)(self.turn)
        if not more:
            return False
        self.batch = self.batch + more
        self.supersede_count += 1
        return True

    def _lost(self, why: str) -> tuple[str, str]:
        # Send nothing: the batch stays claimed and the sweeper re-wakes it after the lock TTL.
        logger.warning("conversation %s: turn %s: %s", self.conversation_id, self.turn.pk, why)
        return Outcome.LOST_LOCK, why

    async def _still_ours(self) -> bool:
        """Right before sending: renew the lock now and check no claim was taken back."""
        if not await self.keeper.confirm():
            return False
        return await in_thread(claims.claims_intact)(self.turn, len(self.batch))

    async def _send(self, conversation: Conversation, reply: str) -> tuple[str, str]:
        if not await self._still_ours():
            return self._lost("lock or claim lost before sending")
        if await in_thread(claims.handler_of)(self.conversation_id) != Conversation.Handler.BOT:
            await in_thread(claims.finish_batch)(self.turn, Message.State.SKIPPED)
            return Outcome.HUMAN, "a person took over during the turn"
        try:
            await in_thread(send_text)(conversation, reply, kind=Message.Kind.REPLY, turn=self.turn)
        except Exception as exc:
            why = f"reply not sent: {type(exc).__name__}"
            await in_thread(claims.finish_batch)(self.turn, Message.State.FAILED, why)
            await in_thread(claims.hand_to_human)(self.conversation_id, why)
            return Outcome.HUMAN, why
        await in_thread(claims.finish_batch)(self.turn, Message.State.ANSWERED)
        return Outcome.ANSWERED, ""

    async def _fallback(self, conversation: Conversation, why: str) -> tuple[str, str]:
        if not await self._still_ours():
            return self._lost("lock or claim lost before the fallback")
        try:
            await in_thread(send_text)(
                conversation,
                self.runtime.fallback_reply,
                kind=Message.Kind.FALLBACK,
                turn=self.turn,
            )
        except Exception as exc:
            logger.warning(
                "conversation %s: fallback not sent: %s", self.conversation_id, type(exc).__name__
            )
        await in_thread(claims.hand_to_human)(self.conversation_id, why)
        await in_thread(claims.finish_batch)(self.turn, Message.State.FAILED, why)
        return Outcome.FALLBACK, why


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
    items = []
    for message in [*earlier, *batch]:
        role = "user" if message.direction == Message.Direction.INBOUND else "assistant"
        items.append({"role": role, "content": message.text or f"[{message.type}]"})
    return items


def build_request(
    turn: Turn, batch: list[Message], context: CustomerContext, runtime
) -> AssistantRequest:
    return AssistantRequest.for_turn(
        runtime, transcript(turn, batch, runtime.history_window_messages), context
    )
