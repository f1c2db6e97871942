"""The tool loop: the real openai SDK against the local fake Responses API scripted to call our
tools, with a real ToolSession on an in-process CRM and the real database (tickets)."""

import json

import pytest

from conversations.assistant import openai_assistant, tools
from conversations.assistant.openai_assistant import (
    MAX_TOOL_ROUNDS,
    AssistantError,
    AssistantRequest,
    generate_reply,
)
from conversations.assistant.tools import ToolSession
from conversations.models import Conversation, Customer
from crm_gateway.context import CustomerContext
from crm_gateway.models import Ticket
from tests.fakes.crm_api import POINT, ToolCrm
from tests.fakes.responses_api import FakeResponsesAPI, function_call, reasoning

pytestmark = pytest.mark.django_db(transaction=True)

CPF = "52998224725"


@pytest.fixture
def api(settings):
    with FakeResponsesAPI(reply="Pronto!") as fake:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = fake.url
        yield fake


@pytest.fixture
def crm():
    return ToolCrm()


def checked_context(checked: bool = True) -> CustomerContext:
    return CustomerContext(
        document_status="known",
        masked_document="***.982.247-**",
        installation_points=[dict(POINT)],
        identity_checked=checked,
        document=CPF,
        wa_id="5511987650001",
    )


def session(crm, checked: bool = True, first_message_id: int = 1) -> ToolSession:
    customer = Customer.objects.create(wa_id=f"55119{Customer.objects.count():08d}")
    conversation = Conversation.objects.create(customer=customer)
    return ToolSession(
        conversation_id=conversation.pk,
        first_message_id=first_message_id,
        context=checked_context(checked),
        crm_timeout_s=2,
        client=crm,
    )


def ask(tool_session: ToolSession, text: str = "oi") -> AssistantRequest:
    return AssistantRequest(
        instructions="Você é o assistente.",
        model="gpt-test",
        transcript=[{"role": "user", "content": text}],
        timeout_s=10,
        tools=tool_session,
    )


def outputs(body: dict) -> list[dict]:
    """The function_call_output items of a request, their output parsed."""
    return [
        {**item, "output": json.loads(item["output"])}
        for item in body["input"]
        if item.get("type") == "function_call_output"
    ]


# --- each tool ------------------------------------------------------------------------------


async def test_it_offers_strict_tools_with_store_off_and_reasoning_included(api, crm):
    reply = await generate_reply(ask(await _session(crm)))
    body = api.calls[0]
    assert reply.text == "Pronto!" and reply.llm_calls == 1  # no tool needed: one call
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "tool_choice" not in body
    names = [tool["name"] for tool in body["tools"]]
    assert names == [
        "transfer_to_human",
        "get_installation_points",
        "get_connection_status",
        "list_open_invoices",
        "open_ticket",
    ]
    for tool in body["tools"]:
        assert tool["strict"] is True and tool["type"] == "function"
        parameters = tool["parameters"]
        assert parameters["additionalProperties"] is False
        assert parameters["required"] == list(parameters["properties"])


async def test_it_hands_over_without_another_llm_call(api, crm):
    api.script = [[function_call("transfer_to_human", reason="cliente pediu atendente")]]
    reply = await generate_reply(ask(await _session(crm)))
    assert reply.handoff_reason == "cliente pediu atendente"
    assert reply.text == "" and len(api.calls) == 1
    assert [(c["name"], c["ok"]) for c in reply.tool_calls] == [("transfer_to_human", True)]


async def test_it_gives_the_points_of_a_checked_customer(api, crm):
    api.script = [[function_call("get_installation_points")]]
    reply = await generate_reply(ask(await _session(crm)))
    [output] = outputs(api.calls[1])
    assert output["output"]["pontos"][0]["address"] == POINT["address"]
    assert reply.text == "Pronto!" and reply.llm_calls == 2


async def test_it_gives_the_connection_status(api, crm):
    api.script = [[function_call("get_connection_status", point_id="PI-1")]]
    await generate_reply(ask(await _session(crm)))
    [output] = outputs(api.calls[1])
    assert output["output"] == {
        "point_id": "PI-1",
        "online": False,
        "last_seen": None,
        "signal_dbm": -28.0,
    }


async def test_it_lists_the_open_invoices(api, crm):
    api.script = [[function_call("list_open_invoices")]]
    await generate_reply(ask(await _session(crm)))
    [output] = outputs(api.calls[1])
    assert output["output"]["faturas"][0]["barcode"] == "34191.79001 01043.510047"


async def test_it_opens_a_ticket_and_keeps_it(api, crm):
    api.script = [
        [
            function_call(
                "open_ticket", point_id="PI-1", category="no_connection", description="sem sinal"
            )
        ]
    ]
    tool_session = await _session(crm)
    await generate_reply(ask(tool_session))
    [output] = outputs(api.calls[1])
    assert output["output"] == {"protocolo": "P00001", "categoria": "no_connection"}
    ticket = await Ticket.objects.aget()
    assert (ticket.protocol, ticket.point_id, ticket.conversation_id) == (
        "P00001",
        "PI-1",
        tool_session.conversation_id,
    )
    assert crm.ticket_calls[0]["idempotency_key"] == ticket.idempotency_key


# --- bad calls --------------------------------------------------------------------------------

TICKET = {"point_id": "PI-1", "category": "no_connection", "description": "sem sinal"}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (function_call("format_disk"), "ferramenta desconhecida"),
        (function_call("open_ticket", arguments="{not json"), "não são um JSON válido"),
        (function_call("open_ticket", arguments="[1, 2]"), "devem ser um objeto JSON"),
        (function_call("open_ticket", point_id="PI-1"), "faltam argumentos"),
        (function_call("open_ticket", **TICKET, urgent="yes"), "argumentos desconhecidos"),
        (function_call("open_ticket", **(TICKET | {"category": "refund"})), "deve ser um de"),
        (function_call("open_ticket", **(TICKET | {"point_id": "PI-999"})), "não é um ponto"),
        (function_call("open_ticket", **(TICKET | {"description": "  "})), "texto não vazio"),
        (function_call("open_ticket", **(TICKET | {"description": 7})), "texto não vazio"),
        (function_call("transfer_to_human", reason="x" * 300), "mais de 255"),
    ],
)
async def test_it_answers_a_bad_call_with_an_error_the_model_sees(api, crm, call, error):
    api.script = [[call]]
    reply = await generate_reply(ask(await _session(crm)))
    [output] = outputs(api.calls[1])
    assert error in output["output"]["erro"]
    assert reply.text == "Pronto!"  # the customer gets the model's answer, not the error
    assert [c["ok"] for c in reply.tool_calls] == [False]
    assert await Ticket.objects.acount() == 0 and crm.ticket_calls == []
    assert not reply.handoff_reason


@pytest.mark.parametrize("name", ["get_installation_points", "list_open_invoices"])
async def test_it_refuses_personal_data_to_an_unchecked_customer(api, crm, name):
    api.script = [[function_call(name)]]
    await generate_reply(ask(await _session(crm, checked=False)))
    [output] = outputs(api.calls[1])
    assert output["output"] == {"erro": tools.NOT_CHECKED}


async def test_it_refuses_connection_and_tickets_to_an_unchecked_customer(api, crm):
    api.script = [
        [
            function_call("get_connection_status", point_id="PI-1"),
            function_call("open_ticket", **TICKET),
        ]
    ]
    await generate_reply(ask(await _session(crm, checked=False)))
    assert [o["output"] for o in outputs(api.calls[1])] == [{"erro": tools.NOT_CHECKED}] * 2
    assert crm.ticket_calls == []


async def test_it_says_unavailable_when_the_crm_is_down(api, crm):
    crm.fail = True
    api.script = [[function_call("list_open_invoices")]]
    reply = await generate_reply(ask(await _session(crm)))
    assert outputs(api.calls[1])[0]["output"] == {"erro": "indisponível no momento"}
    assert reply.text == "Pronto!"


async def test_it_says_not_available_when_the_crm_lacks_the_feature(api, crm, monkeypatch):
    from crm_gateway.client import CrmClient

    monkeypatch.setattr(ToolCrm, "fetch_invoices", CrmClient.fetch_invoices)
    api.script = [[function_call("list_open_invoices")]]
    await generate_reply(ask(await _session(crm)))
    assert outputs(api.calls[1])[0]["output"] == {"erro": tools.NOT_OFFERED}


# --- the loop ---------------------------------------------------------------------------------


async def test_it_stops_after_three_rounds_with_the_last_forced_to_text(api, crm):
    looping = [function_call("get_installation_points")]
    api.script = [looping, looping, looping, looping]
    api.reply = "Resposta final"
    api.script[MAX_TOOL_ROUNDS - 1] = "Resposta final"  # what the model says when forced
    reply = await generate_reply(ask(await _session(crm)))
    assert len(api.calls) == MAX_TOOL_ROUNDS == 3
    assert [body.get("tool_choice") for body in api.calls] == [None, None, "none"]
    assert reply.text == "Resposta final" and len(reply.tool_calls) == 2


async def test_it_fails_when_the_forced_last_round_still_gives_no_text(api, crm):
    looping = [function_call("get_installation_points")]
    api.script = [looping] * 3
    with pytest.raises(AssistantError, match="empty reply") as failure:
        await generate_reply(ask(await _session(crm)))
    assert len(api.calls) == 3
    assert len(failure.value.partial.tool_calls) == 2  # the turn still records them


async def test_it_runs_parallel_calls_and_answers_each_in_one_round(api, crm):
    api.script = [
        [
            function_call("get_connection_status", point_id="PI-1"),
            function_call("list_open_invoices"),
        ]
    ]
    reply = await generate_reply(ask(await _session(crm)))
    assert len(api.calls) == 2
    second = api.calls[1]["input"]
    kinds = [item.get("type", item.get("role")) for item in second]
    calls, answers = ["function_call"] * 2, ["function_call_output"] * 2
    assert kinds == ["user", *calls, *answers]
    assert [o["call_id"] for o in outputs(api.calls[1])] == ["call_1_0", "call_1_1"]
    assert {c["name"] for c in reply.tool_calls} == {"get_connection_status", "list_open_invoices"}


async def test_it_passes_reasoning_items_back_whole(api, crm):
    api.script = [[reasoning(), function_call("list_open_invoices")]]
    await generate_reply(ask(await _session(crm)))
    [item] = [i for i in api.calls[1]["input"] if i.get("type") == "reasoning"]
    assert item["id"] == "rs_fake1_0"
    assert item["encrypted_content"] == "gAAAA-fake-encrypted"


async def test_it_sums_the_token_usage_of_every_round(api, crm):
    api.usage = {"input_tokens": 1200, "cached_tokens": 1024, "output_tokens": 40}
    api.script = [[function_call("list_open_invoices")]]
    reply = await generate_reply(ask(await _session(crm)))
    assert (reply.input_tokens, reply.cached_input_tokens, reply.output_tokens) == (2400, 2048, 80)


async def test_it_offers_no_tools_when_the_turn_has_none(api):
    request = ask(None)
    reply = await generate_reply(request)
    assert "tools" not in api.calls[0] and "include" not in api.calls[0]
    assert reply.text == "Pronto!" and reply.tool_calls == []


async def _session(crm, checked: bool = True) -> ToolSession:
    from asgiref.sync import sync_to_async

    return await sync_to_async(session)(crm, checked)


async def test_it_asks_again_without_encrypted_reasoning_for_a_model_without_reasoning(
    api, crm, monkeypatch
):
    monkeypatch.setattr(openai_assistant, "_NO_ENCRYPTED_REASONING", set())
    api.no_encrypted_reasoning = {"gpt-4o"}
    request = ask(await _session(crm))
    request.model = "gpt-4o"
    reply = await generate_reply(request)
    assert reply.text == "Pronto!"
    assert [("include" in body) for body in api.calls] == [True, False]
    await generate_reply(request)  # learnt: not asked with it again
    assert [("include" in body) for body in api.calls] == [True, False, False]


async def test_it_reports_other_bad_requests_as_a_failure(api, crm):
    api.fail_times, api.fail_status = 1, 400
    with pytest.raises(AssistantError, match="HTTP 400"):
        await generate_reply(ask(await _session(crm)))
    assert len(api.calls) == 1
