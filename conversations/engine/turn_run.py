"""The work of one turn once its batch is claimed (conversations.engine.turn_loop claims it): the customer's
context, the reply (regenerated while the customer keeps writing, up to the supersede cap), then
exactly one message to the customer, recorded with the end of the turn in one commit."""

import asyncio
import logging
import time

from django.utils import timezone

from conversations.assistant.openai_assistant import (
    AssistantError,
    AssistantReply,
    AssistantRequest,
    generate_reply,
)
from conversations.assistant.tools import ToolSession
from conversations.engine import claims, handoff, peeks, turn_end
from conversations.engine.debounce import wait_for_quiet
from conversations.engine.locks import LockUnavailable
from conversations.engine.media_step import TurnMedia, prepare_media
from conversations.engine.transcript import transcript, with_batch_media
from conversations.engine.typing_indicator import Typing
from conversations.models import Conversation, Message, Turn
from conversations.threads import in_io_thread, in_thread
from conversations.whatsapp.sender import (
    SendError,
    announce_sent,
    hand_over,
    queue_text,
    send_text,
    sent_statements,
)
from conversations.whatsapp.window import (
    OUTSIDE_WINDOW_REASON,
    hand_over_outside_window,
    within_reply_window,
)
from crm_gateway.context import CustomerContext, build_customer_context, claim_notice

logger = logging.getLogger(__name__)

Outcome = Turn.Outcome
SUPERSEDE = "supersede"  # _deliver's answer when new messages should be taken in first


def ms_since(since: float) -> int:
    """Milliseconds since a time.monotonic() reading."""
    return max(0, round((time.monotonic() - since) * 1000))


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
        self.media = TurnMedia()
        # What the assistant spent over all its generations (supersede included).
        self.tool_calls: list[dict] = []
        self.tokens = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}
        self.handoff_reason = ""  # transfer_to_human was called: hand over instead of replying
        self.typing = Typing(self.conversation.pk, lambda: self.batch[-1])

    def start_typing(self) -> None:
        self.typing.start()

    def stop_typing(self) -> None:
        self.typing.stop()

    async def answer(self) -> tuple[str, "peeks.Peek | None"]:
        if not within_reply_window(self._last_customer_message_at()):
            return await in_thread(self._outside_window)()
        while True:
            context = await self._context_and_media()
            request = AssistantRequest.for_turn(
                self.runtime, self.transcript, context, self._tool_session(context)
            )
            started = time.monotonic()
            try:
                result = self._account(AssistantReply.of(await generate_reply(request)))
                reply, self.handoff_reason = result.text.strip(), result.handoff_reason
                error = "" if reply or self.handoff_reason else "assistant failed: empty reply"
            except AssistantError as exc:
                self._account(exc.partial)
                reply, error = "", f"assistant failed: {exc.reason}"
            except Exception as exc:  # a bug in the assistant must not lose the batch either
                logger.exception("conversation %s: assistant crashed", self.turn.conversation_id)
                reply, error = "", f"assistant failed: {type(exc).__name__}"
            self.llm_ms += ms_since(started)
            if self.keeper.lost.is_set():
                return await in_thread(self._finish)(
                    Outcome.LOST_LOCK, "lock lost during the reply"
                )
            may_supersede = self._may_supersede() and not self.handoff_reason
            outcome, peek = await in_thread(self._deliver)(reply, error, may_supersede)
            if outcome is SUPERSEDE:
                if await self._supersede():
                    continue
                outcome, peek = await in_thread(self._deliver)(reply, error, False)
            if outcome == Outcome.LOST_LOCK:
                self.keeper.lost.set()
            return outcome, peek

    async def _context_and_media(self) -> CustomerContext:
        """The customer's context while the batch's voice notes and photos are fetched and
        transcribed (conversations.engine.media_step), then the transcript that reads them."""
        context, _ = await asyncio.gather(
            self._context(), prepare_media(self.batch, self.runtime, self.media)
        )
        self.transcript = with_batch_media(
            self.transcript, self.batch, self.media.images, self.runtime
        )
        return context

    def _tool_session(self, context: CustomerContext) -> ToolSession | None:
        if not self.runtime.assistant_tools_enabled:
            return None
        return ToolSession(
            conversation_id=self.turn.conversation_id,
            first_message_id=self.batch[0].pk,
            context=context,
            crm_timeout_s=self.runtime.crm_timeout_seconds,
        )

    def _account(self, result: AssistantReply | None) -> AssistantReply | None:
        """Add a generation's tool calls and token usage to the turn's record."""
        if result is not None:
            self.tool_calls += result.tool_calls
            for name in self.tokens:
                self.tokens[name] += getattr(result, name)
        return result

    def _last_customer_message_at(self):
        return max((m.sent_at or m.created_at) for m in self.batch)

    def _outside_window(self):
        """More than 24 h since the customer's last message (workers down for a day): WhatsApp
        would refuse the reply, so none is generated and a person takes the conversation."""
        hand_over_outside_window(self.turn.conversation_id)
        return self._finish(
            Outcome.HUMAN,
            OUTSIDE_WINDOW_REASON,
            Message.State.SKIPPED,
            reason=OUTSIDE_WINDOW_REASON,
        )

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
        self.crm_ms += ms_since(started)
        for outage_id, text in context.notices:
            await in_io_thread(_send_notice)(self.conversation, outage_id, text, self.turn)
        return context

    def _may_supersede(self) -> bool:
        """Supersede is on and under its cap (otherwise new messages form the next turn)."""
        return self.runtime.supersede_enabled and self.supersede_count < self.runtime.supersede_cap

    async def _supersede(self) -> bool:
        """New messages while the reply was prepared: take them into this batch; regenerate."""
        started = time.monotonic()
        await wait_for_quiet(self.turn.conversation_id, self.runtime)
        self.debounce_ms += ms_since(started)
        more, self.transcript = await in_thread(self._claim_more)()
        if not more:
            return False
        self.batch = self.batch + more
        self.supersede_count += 1
        return True

    def _claim_more(self) -> tuple[list[Message], list[dict]]:
        window = self.runtime.history_window_messages
        claimed = claims.claim_more(self.turn, window)
        if claimed is None:
            return [], self.transcript
        batch = self.batch + claimed.batch
        return claimed.batch, transcript(self.turn, batch, window, claimed.history)

    def _fields(self, outcome: str, detail: str) -> dict:
        return {
            "outcome": outcome,
            "detail": detail[:255],
            "batch_size": len(self.batch),
            "supersede_count": self.supersede_count,
            "debounce_wait_ms": self.debounce_ms,
            "crm_ms": self.crm_ms,
            "llm_ms": self.llm_ms,
            "transcription_ms": self.media.transcription_ms,
            "transcription_usage": self.media.transcription_usage,
            "tool_calls": self.tool_calls,
            **self.tokens,
        }

    def _finish(self, outcome: str, detail: str, batch_state: str = "", **settle):
        """Record the end of the turn; returns (outcome, the loop's next look)."""
        if outcome == Outcome.LOST_LOCK:
            # Nothing sent: the batch stays claimed and the sweeper re-wakes the conversation
            # once the claim outlives the lock TTL.
            logger.warning(
                "conversation %s: turn %s: %s", self.turn.conversation_id, self.turn.pk, detail
            )
        peek = turn_end.settle(
            self.turn,
            batch_state=batch_state,
            started=self.started,
            **settle,
            **self._fields(outcome, detail),
        )
        return outcome, peek

    def _first_reply_ms(self) -> int:
        """From the oldest message of the batch stored to now (its reply just went out)."""
        oldest = min(message.created_at for message in self.batch)
        return max(0, round((timezone.now() - oldest).total_seconds() * 1000))

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
        state = turn_end.after_reply(self.turn, len(self.batch))
        if state.new_pending and may_supersede and not error:
            return SUPERSEDE, None
        if not self._still_ours(state.claims_intact):
            return self._finish(Outcome.LOST_LOCK, "lock or claim lost before sending")
        if state.handler != Conversation.Handler.BOT:
            return self._finish(
                Outcome.HUMAN, "a person took over during the turn", Message.State.SKIPPED
            )
        source = Conversation.HandoffSource.FALLBACK
        if error:
            outcome, detail, batch_state = Outcome.FALLBACK, error, Message.State.FAILED
            text, kind = self.runtime.fallback_reply, Message.Kind.FALLBACK
        elif self.handoff_reason:
            outcome, batch_state = Outcome.HUMAN, Message.State.ANSWERED
            detail, source = "handed over by the assistant", Conversation.HandoffSource.TOOL
            text, kind = handoff.handoff_text(self.runtime), Message.Kind.HANDOFF
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
                if isinstance(exc, SendError) and exc.outside_window:
                    # hand_over handed it to a person and told the staff: record it, once
                    detail, source = OUTSIDE_WINDOW_REASON, Conversation.HandoffSource.WINDOW
                batch_state = Message.State.FAILED
        failed = batch_state == Message.State.FAILED
        handoff_reason = detail if failed else self.handoff_reason
        sent = (
            [] if provider_id is None else sent_statements(self.conversation, message, provider_id)
        )
        # The sent record and the end of the turn in one commit.
        result = self._finish(
            outcome,
            detail,
            batch_state,
            reason=detail if failed else "",
            handoff=handoff_reason,
            handoff_source=source,
            first=sent,
            **({"first_reply_ms": self._first_reply_ms()} if sent else {}),
        )
        if sent:
            announce_sent(self.conversation, message)
        if handoff_reason and source != Conversation.HandoffSource.WINDOW:
            handoff.announce(self.turn.conversation_id, source)
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
