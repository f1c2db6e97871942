"""Bench (a) with the assistant's tools: the seed's timeline answered by the real assistant (the
openai SDK, the tool loop, the tools on the demo CRM) against a local stand-in for the Responses
API that behaves like a model: it calls get_connection_status when the customer's latest message
is about a connection still down, and answers in text otherwise. Not run on its own:
engine_timeline.py --tools runs it, tools off and on side by side.

Token usage is what a real API would count, roughly: input = a quarter of the request's JSON
characters (instructions, transcript, tool schemas and outputs), output = 40 per answer.
"""

import random

import engine_common as bench

DOWN_WORDS = ("sem internet", "luz", "reiniciei")
POINT = {
    "id": "PI-1001",
    "address": "Rua Augusta, 1200, ap. 41",
    "city": "São Paulo",
    "region": "Centro",
    "status": "ativo",
}


def model_answer(body: dict):
    """A tool call on the first round of a turn about a dead connection, else a text answer."""
    from tests.fakes.responses_api import function_call

    items = body.get("input") or []
    answered_tool = any(item.get("type") == "function_call_output" for item in items)
    last_user = next(
        (str(item.get("content")) for item in reversed(items) if item.get("role") == "user"), ""
    )
    wants_tool = any(word in last_user for word in DOWN_WORDS)
    if body.get("tools") and wants_tool and not answered_tool and body.get("tool_choice") != "none":
        return [function_call("get_connection_status", point_id=POINT["id"])]
    return "Certo! Verifiquei aqui: o seu ponto está offline desde cedo. Vamos resolver."


def model_usage(body: dict) -> dict:
    import json

    size = len(json.dumps(body, ensure_ascii=False))
    return {"input_tokens": size // 4, "cached_tokens": 0, "output_tokens": 40}


class CheckedCrm(bench.FakeCrm):
    """The stand-in context of a checked customer with one point (the demo CRM's PI-1001)."""

    def __call__(self, conversation_id: int, batch_texts: list[str]):
        from crm_gateway.context import CustomerContext

        super().__call__(conversation_id, batch_texts)
        return CustomerContext(
            document_status="known",
            masked_document="***.982.247-**",
            installation_points=[dict(POINT)],
            identity_checked=True,
            document="52998224725",
        )


async def run(ids, messages, offsets, *, customer, wait_settled) -> dict:
    """The timeline through the real assistant; the runtime settings say whether tools are on."""
    import asyncio

    from django.conf import settings

    from conversations import events
    from conversations.engine import turn_run
    from conversations.models import Turn
    from conversations.threads import in_thread
    from tests.fakes.responses_api import FakeResponsesAPI

    with FakeResponsesAPI(reply=model_answer, usage=model_usage) as api:
        api.delay_s = random.uniform(0.15, 0.20)  # one model's pace for the whole run
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "bench-key", api.url
        crm = CheckedCrm(cached=True)
        turn_run.build_customer_context = crm
        turn_run.send_typing_indicator = lambda message: True

        async def webhook(conversation_id, message):
            await events.asend_wake(conversation_id)

        async with bench.InProcessWorker():
            await asyncio.gather(
                *[customer(c, webhook, messages, o) for c, o in zip(ids, offsets, strict=True)]
            )
            await wait_settled(ids)
        calls = len(api.calls)
        # Calls that answered a tool's output: the extra calls that tools cost.
        followups = sum(
            any(item.get("type") == "function_call_output" for item in body.get("input") or [])
            for body in api.calls
        )

    def record() -> dict:
        turns = list(Turn.objects.filter(conversation_id__in=ids, outcome=Turn.Outcome.ANSWERED))
        n = len(turns) or 1
        tool_calls = [call for turn in turns for call in turn.tool_calls]
        return {
            "answered turns": len(turns),
            "LLM calls": calls,
            "LLM calls per turn": calls / n,
            "LLM calls per generation (supersede too)": calls / max(1, calls - followups),
            "tool calls per turn": len(tool_calls) / n,
            "tool calls that failed": sum(1 for c in tool_calls if not c["ok"]),
            "input tokens per turn": sum(t.input_tokens for t in turns) / n,
            "output tokens per turn": sum(t.output_tokens for t in turns) / n,
            "LLM time per turn (s, real)": sum(t.llm_ms for t in turns) / n / 1000 * 100,
        }

    return await in_thread(record)()
