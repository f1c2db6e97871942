"""The assistant's reply for one turn: the OpenAI Responses API when OPENAI_API_KEY is set, the
offline Portuguese assistant (conversations.assistant.offline) otherwise.

Our database is the source of truth: every call sends the instructions plus the customer context,
and the transcript the engine built from our own history, with store=False. Nothing lives in
OpenAI between calls, so history survives restarts and model changes.

Time budget: the whole call, retries and the SDK's backoff sleeps included, runs inside
asyncio.timeout(timeout_s). Each attempt may use the whole budget (a slow but good answer is not
cut short); retries (connection errors, 408, 409, 429, 5xx) happen only within what is left.

Tools (when the request carries a ToolSession, conversations.assistant.tools): when a response
holds function calls, they run (in parallel, off the event loop), the response's output items and
one function_call_output per call are appended to the input, and the model is called again; at
most MAX_TOOL_ROUNDS calls per reply, all inside the same time budget, the last one with
tool_choice="none" so the model must answer in text. A transfer_to_human ends the loop at once:
the engine sends the handoff message instead of a reply. Reasoning items come back whole
(include=["reasoning.encrypted_content"]) since nothing is stored at OpenAI; a model without
reasoning refuses that include (HTTP 400), so it is asked again without it and remembered.
"""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import openai
from django.conf import settings

from conversations import metrics
from conversations.assistant.offline import offline_reply
from conversations.assistant.tools import TOOLS, ToolSession
from conversations.threads import in_io_thread

logger = logging.getLogger(__name__)

# Retries of the SDK per reply, within the time budget (the SDK's default).
MAX_RETRIES = 2
# LLM calls per reply when tools are on: tool rounds, then a last call that must answer in text.
MAX_TOOL_ROUNDS = 3
REASONING_INCLUDE = ["reasoning.encrypted_content"]


class AssistantError(Exception):
    """The assistant could not produce a reply. `reason` is short and has no personal data."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:255]
        self.partial: AssistantReply | None = None  # what was spent before it failed


@dataclass
class AssistantRequest:
    instructions: str
    model: str
    # [{"role": "user"|"assistant", "content": str}, ...] oldest first, ending with the batch.
    transcript: list[dict[str, str]]
    context_text: str = ""  # CustomerContext.prompt_text(), appended to the instructions
    context: Any = None  # the CustomerContext itself (document_status, active_outages...)
    timeout_s: float = 60.0
    tools: ToolSession | None = None  # None: no tools offered (a reply in text only)

    @classmethod
    def for_turn(
        cls, runtime, transcript: list[dict[str, str]], context=None, tools=None
    ) -> "AssistantRequest":
        """Build from a RuntimeSnapshot and the turn's CustomerContext (or None)."""
        return cls(
            instructions=runtime.assistant_instructions,
            model=runtime.llm_model,
            transcript=transcript,
            context_text=context.prompt_text() if context is not None else "",
            context=context,
            timeout_s=runtime.llm_timeout_seconds,
            tools=tools,
        )

    def full_instructions(self) -> str:
        if not self.context_text.strip():
            return self.instructions
        return f"{self.instructions.rstrip()}\n\n# Contexto do cliente\n{self.context_text.strip()}"


@dataclass
class AssistantReply:
    """The reply and what it cost: the tool calls made, the LLM calls and their token usage."""

    text: str
    tool_calls: list[dict] = field(default_factory=list)  # [{"name", "ok", "ms"}]
    handoff_reason: str = ""  # transfer_to_human was called: hand over instead of replying
    llm_calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def of(cls, value: "AssistantReply | str | None") -> "AssistantReply":
        """A plain string (a stand-in assistant in tests and benchmarks) is a reply without tools."""
        return value if isinstance(value, AssistantReply) else cls(text=value or "")

    def add_usage(self, usage) -> None:
        self.llm_calls += 1
        if usage is None:
            return
        details = getattr(usage, "input_tokens_details", None)
        self.input_tokens += usage.input_tokens or 0
        self.cached_input_tokens += getattr(details, "cached_tokens", 0) or 0
        self.output_tokens += usage.output_tokens or 0


async def generate_reply(request: AssistantRequest) -> AssistantReply:
    """The reply. Raises AssistantError when no usable reply came within the time budget."""
    if not settings.OPENAI_API_KEY:
        if request.tools is None:
            return AssistantReply(offline_reply(request))
        text = await in_io_thread(offline_reply)(request)  # its tools call the CRM
        return _with_tools(AssistantReply(text), request.tools)
    return await _openai_reply(request)


def _with_tools(reply: AssistantReply, session: ToolSession | None) -> AssistantReply:
    if session is not None:
        reply.tool_calls = list(session.calls)
        reply.handoff_reason = session.handoff_reason
    return reply


async def _openai_reply(request: AssistantRequest) -> AssistantReply:
    reply = AssistantReply("")
    try:
        return await _rounds(request, reply)
    except AssistantError as exc:
        exc.partial = _with_tools(reply, request.tools)  # tool calls and tokens still count
        raise


async def _rounds(request: AssistantRequest, reply: AssistantReply) -> AssistantReply:
    client = loop_client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, request.timeout_s)
    started = time.monotonic()
    session = request.tools
    items: list = list(request.transcript)
    try:
        async with asyncio.timeout(request.timeout_s):
            for round_number in range(1, MAX_TOOL_ROUNDS + 1):
                options: dict[str, Any] = {}
                if session is not None:
                    options = {"tools": TOOLS}
                    if request.model not in _NO_ENCRYPTED_REASONING:
                        options["include"] = REASONING_INCLUDE
                    if round_number == MAX_TOOL_ROUNDS:
                        options["tool_choice"] = "none"
                response = await _create(client, request, items, started, options)
                reply.add_usage(response.usage)
                calls = [item for item in response.output if item.type == "function_call"]
                if session is None or not calls or round_number == MAX_TOOL_ROUNDS:
                    break
                items += [item.model_dump(exclude_none=True) for item in response.output]
                items += await _run_calls(session, calls)
                if session.handoff_reason:
                    break  # the handoff message goes out instead of a reply: no more rounds
    except TimeoutError:
        raise _failed(request, started, f"no reply within {request.timeout_s:g} s") from None
    except openai.APITimeoutError:
        raise _failed(request, started, f"no reply within {request.timeout_s:g} s") from None
    except openai.APIStatusError as exc:
        raise _failed(request, started, f"HTTP {exc.status_code} from the LLM API") from None
    except openai.APIConnectionError:
        raise _failed(request, started, "could not connect to the LLM API") from None
    except openai.OpenAIError as exc:
        raise _failed(request, started, f"LLM API error ({type(exc).__name__})") from None
    _with_tools(reply, session)
    reply.text = "" if reply.handoff_reason else (response.output_text or "").strip()
    if not reply.text and not reply.handoff_reason:
        raise _failed(request, started, f"empty reply (status {response.status or 'unknown'})")
    logger.info(
        "assistant reply from %s in %.0f ms (%d chars, %d LLM calls, %d tool calls)",
        request.model,
        (time.monotonic() - started) * 1000,
        len(reply.text),
        reply.llm_calls,
        len(reply.tool_calls),
    )
    return reply


# Models that refused include=["reasoning.encrypted_content"] ("Encrypted content is not
# supported with this model": models without reasoning, e.g. gpt-4o, gpt-4.1): learnt once per
# process from the API's own answer, not guessed from the model's name.
_NO_ENCRYPTED_REASONING: set[str] = set()


async def _create(client, request: AssistantRequest, items: list, started: float, options: dict):
    async def call(**extra):
        # One observation per LLM request, tool rounds and the retry without include each count.
        requested = time.monotonic()
        try:
            return await client.responses.create(
                model=request.model,
                instructions=request.full_instructions(),
                input=items,
                store=False,
                timeout=max(0.001, request.timeout_s - (time.monotonic() - started)),
                **extra,
            )
        finally:
            metrics.observe(metrics.LLM_REQUEST, time.monotonic() - requested)

    try:
        return await call(**options)
    except openai.BadRequestError as exc:
        if "include" not in options or getattr(exc, "param", None) != "include":
            raise
    logger.info("model %s has no encrypted reasoning: asking again without it", request.model)
    _NO_ENCRYPTED_REASONING.add(request.model)
    return await call(**{k: v for k, v in options.items() if k != "include"})


async def _run_calls(session: ToolSession, calls: list) -> list[dict]:
    """Run one response's function calls side by side; one function_call_output per call."""
    outputs = await asyncio.gather(
        *(in_io_thread(session.run)(call.name, call.arguments) for call in calls)
    )
    return [
        {"type": "function_call_output", "call_id": call.call_id, "output": output}
        for call, output in zip(calls, outputs, strict=True)
    ]


def _failed(request: AssistantRequest, started: float, reason: str) -> AssistantError:
    logger.warning(
        "assistant failed after %.0f ms with %s: %s",
        (time.monotonic() - started) * 1000,
        request.model,
        reason,
    )
    return AssistantError(reason)


# One client per event loop and configuration: an async HTTP pool belongs to the loop it was
# created on, so a client must not outlive its loop (tests, async_to_sync) nor cross loops.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def loop_client(
    api_key: str,
    base_url: str,
    timeout_s: float | None = None,
    max_retries: int = MAX_RETRIES,
) -> openai.AsyncOpenAI:
    """This loop's client for the configuration (the transcription uses it too)."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (api_key, base_url or None, timeout_s, max_retries)
    client = per_loop.get(key)
    if client is None:
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=openai.DEFAULT_TIMEOUT if timeout_s is None else timeout_s,
            max_retries=max_retries,
        )
        per_loop[key] = client
    return client
