"""End to end in one process, through the signed webhook, the engine, the demo CRM and the
console sender: a handoff to a person, a ticket opened after "sim", and the identity rule on
what the LLM receives (the real SDK against the fake Responses API)."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations import events
from conversations.engine import turn_loop
from conversations.models import Conversation, Message, Turn
from conversations.runtime import get_runtime
from crm_gateway.models import Ticket
from tests.fakes.engine import configure, short_lived_connections  # noqa: F401 (autouse)
from tests.fakes.responses_api import FakeResponsesAPI, function_call
from tests.fakes.whatsapp_payloads import (
    post_signed_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "e2e-tools-secret"
ON_FILE = "5511987650001"  # the simulator's default number: on file for CPF 529.982.247-25
STRANGER = "5521912345678"
CPF = "529.982.247-25"


@pytest.fixture
def staff_events(settings, monkeypatch):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.WHATSAPP_ACCESS_TOKEN = ""  # console sender
    settings.CRM_BASE_URL = ""  # built-in demo CRM
    monkeypatch.setattr(events, "send_wake", lambda conversation_id: True)
    sent = []
    monkeypatch.setattr(events, "send_to_staff", sent.append)
    configure()
    return sent


@pytest.fixture
def llm(settings):
    with FakeResponsesAPI(reply="Certo, vou verificar.") as fake:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = fake.url
        yield fake


async def say(number: str, text: str) -> int:
    assert await sync_to_async(post_signed_text)(number, text, SECRET) == 200
    conversation = await Conversation.objects.aget(customer__wa_id=number)
    await turn_loop.run_turns(conversation.pk)
    return conversation.pk


def outbound(conversation_id: int) -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(
            conversation_id=conversation_id, direction=Message.Direction.OUTBOUND
        ).values_list("kind", "text")
    )


async def test_it_hands_over_once_and_the_bot_stays_quiet_after(staff_events, llm):
    llm.script = [[function_call("transfer_to_human", reason="cliente pediu atendente")]]
    conversation_id = await say(ON_FILE, "quero falar com um atendente")
    sent = await sync_to_async(outbound)(conversation_id)
    assert [kind for kind, _ in sent] == [Message.Kind.HANDOFF]
    assert sent[0][1].startswith(get_runtime().handoff_message)
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.handler == Conversation.Handler.HUMAN
    assert conversation.handoff_source == Conversation.HandoffSource.TOOL
    assert conversation.handoff_reason == "cliente pediu atendente"
    assert conversation.handoff_at is not None
    assert [(e["event"], e["data"]) for e in staff_events if e["event"] == "handoff"] == [
        ("handoff", {"source": "tool"})
    ]
    turn = await Turn.objects.aget(conversation_id=conversation_id)
    assert turn.tool_calls[0]["name"] == "transfer_to_human" and turn.tool_calls[0]["ok"]
    assert (turn.input_tokens, turn.output_tokens) == (10, 5)

    await say(ON_FILE, "alô? tem alguém aí?")
    assert len(llm.calls) == 1  # no LLM call for the next message
    assert len(await sync_to_async(outbound)(conversation_id)) == 1  # and no reply
    stored = await Message.objects.filter(
        conversation_id=conversation_id, direction=Message.Direction.INBOUND
    ).alast()
    assert stored.text == "alô? tem alguém aí?"  # stored, shown to the staff


async def test_it_opens_one_ticket_after_yes_and_sends_its_protocol(staff_events):
    conversation_id = await say(ON_FILE, "minha internet caiu")
    await say(ON_FILE, CPF)
    offer = (await sync_to_async(outbound)(conversation_id))[-1][1]
    assert 'Quer que eu abra um chamado técnico para o ponto PI-1001? Responda "sim".' in offer
    assert await Ticket.objects.acount() == 0
    await say(ON_FILE, "sim")
    ticket = await Ticket.objects.aget()
    assert (ticket.conversation_id, ticket.point_id) == (conversation_id, "PI-1001")
    kind, text = (await sync_to_async(outbound)(conversation_id))[-1]
    assert kind == Message.Kind.REPLY and ticket.protocol in text


async def test_it_hands_over_offline_with_one_handoff_message(staff_events):
    conversation_id = await say(ON_FILE, "quero falar com um atendente")
    await say(ON_FILE, "oi?")
    sent = await sync_to_async(outbound)(conversation_id)
    assert [kind for kind, _ in sent] == [Message.Kind.HANDOFF]


async def test_it_never_puts_an_address_in_the_llm_input_for_a_number_not_on_file(
    staff_events, llm
):
    await say(STRANGER, f"meu CPF é {CPF}")
    request = llm.calls[-1]
    everything = str(request["instructions"]) + str(request["input"])
    assert "Rua Augusta" not in everything
    assert "NÃO está confirmada" in request["instructions"]


async def test_it_gives_the_llm_the_address_for_a_number_on_file(staff_events, llm):
    await say(ON_FILE, f"meu CPF é {CPF}")
    assert "Rua Augusta, 1200" in llm.calls[-1]["instructions"]


@pytest.mark.live
async def test_on_postgresql_the_handoff_and_the_identity_rule_hold(
    live_database_url, live_redis_url, staff_events
):
    handed = await say(ON_FILE, "quero falar com um atendente")
    conversation = await Conversation.objects.aget(pk=handed)
    assert conversation.handoff_source == Conversation.HandoffSource.TOOL
    assert conversation.handoff_at is not None
    assert [kind for kind, _ in await sync_to_async(outbound)(handed)] == [Message.Kind.HANDOFF]

    await say(STRANGER, "minha internet caiu")
    other = await say(STRANGER, "529.982.247-25")
    offer = (await sync_to_async(outbound)(other))[-1][1]
    assert "Rua Augusta" not in offer and "não está registrado" in offer  # not on file
    turn = await Turn.objects.filter(conversation_id=other).alast()
    assert [(c["name"], c["ok"]) for c in turn.tool_calls] == [("get_installation_points", False)]
    # The ORM calls above ran on asgiref's sync thread: give its connection back, or the test
    # database cannot be dropped.
    await sync_to_async(connections.close_all)()
