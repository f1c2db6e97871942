"""The assistant's reply for one turn: the OpenAI Responses API when OPENAI_API_KEY is set, the
offline Portuguese assistant (conversations.assistant.offline) otherwise.

Our database is the source of truth: every call sends the instructions plus the customer context,
and the transcript the engine built from our own history, with store=False. Nothing lives in
OpenAI between calls, so history survives restarts and model changes.

Time budget: the whole call, retries and the SDK's backoff sleeps included, runs inside
asyncio.timeout(timeout_s). Each attempt may use the whole budget (a slow but good answer is not
cut short); retries (connection errors, 408, 409, 429, 5xx) happen only within what is left.
"""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

import openai
from django.conf import settings

from conversations import metrics
from conversations.assistant.offline import offline_reply

logger = logging.getLogger(__name__)

# Retries of the SDK per reply, within the time budget (the SDK's default).
MAX_RETRIES = 2


class AssistantError(Exception):
    """The assistant could not produce a reply. `reason` is short and has no personal data."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:255]


@dataclass
class AssistantRequest:
    instructions: str
    model: str
    # [{"role": "user"|"assistant", "content": str}, ...] oldest first, ending with the batch.
    transcript: list[dict[str, str]]
    context_text: str = ""  # CustomerContext.prompt_text(), appended to the instructions
    context: Any = None  # the CustomerContext itself (document_status, active_outages...)
    timeout_s: float = 60.0

    @classmethod
    def for_turn(
        cls, runtime, transcript: list[dict[str, str]], context=None
    ) -> "AssistantRequest":
        """Build from a RuntimeSnapshot and the turn's CustomerContext (or None)."""
        return cls(
            instructions=runtime.assistant_instructions,
            model=runtime.llm_model,
            transcript=transcript,
            context_text=context.prompt_text() if context is not None else "",
            context=context,
            timeout_s=runtime.llm_timeout_seconds,
        )

    def full_instructions(self) -> str:
        if not self.context_text.strip():
            return self.instructions
        return f"{self.instructions.rstrip()}\n\n# Contexto do cliente\n{self.context_text.strip()}"


async def generate_reply(request: AssistantRequest) -> str:
    """The reply text. Raises AssistantError when no usable reply came within the time budget."""
    if not settings.OPENAI_API_KEY:
        return offline_reply(request)
    return await _openai_reply(request)


async def _openai_reply(request: AssistantRequest) -> str:
    client = _client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, request.timeout_s)
    started = time.monotonic()
    try:
        async with asyncio.timeout(request.timeout_s):
            response = await client.responses.create(
                model=request.model,
                instructions=request.full_instructions(),
                input=request.transcript,
                store=False,
                timeout=request.timeout_s,
            )
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
    finally:
        metrics.observe(metrics.LLM_REQUEST, time.monotonic() - started)
    text = (response.output_text or "").strip()
    if not text:
        raise _failed(request, started, f"empty reply (status {response.status or 'unknown'})")
    logger.info(
        "assistant reply from %s in %.0f ms (%d chars)",
        request.model,
        (time.monotonic() - started) * 1000,
        len(text),
    )
    return text


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


def _client(api_key: str, base_url: str, timeout_s: float) -> openai.AsyncOpenAI:
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (api_key, base_url or None, timeout_s, MAX_RETRIES)
    client = per_loop.get(key)
    if client is None:
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout_s,
            max_retries=MAX_RETRIES,
        )
        per_loop[key] = client
    return client
