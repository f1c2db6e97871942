"""The offline assistant's intents through a real ToolSession: a person, the invoice, no
connection (outage, connection status, ticket offer, "sim" opens it)."""

import pytest

from conversations.assistant import offline_actions
from conversations.assistant.offline import offline_reply
from conversations.assistant.openai_assistant import AssistantRequest
from conversations.assistant.tools import ToolSession
from conversations.models import Conversation, Customer
from crm_gateway.context import CustomerContext
from crm_gateway.models import Ticket
from tests.fakes.crm_api import POINT, ToolCrm

pytestmark = pytest.mark.django_db

CPF = "52998224725"
OUTAGE = {
    "id": 1,
    "title": "Rompimento de fibra",
    "message": "Equipe em campo.",
    "regions": ["Centro"],
    "expected_end": None,
}


@pytest.fixture
def crm():
    return ToolCrm()


def make_session(crm, *, checked=True, outages=(), first_message_id=1, conversation_id=None):
    if conversation_id is None:
        customer = Customer.objects.create(wa_id="5511987650001")
        conversation_id = Conversation.objects.create(customer=customer).pk
    context = CustomerContext(
        document_status="known",
        masked_document="***.982.247-**",
        installation_points=[dict(POINT)],
        active_outages=list(outages),
        identity_checked=checked,
        document=CPF,
    )
    return ToolSession(conversation_id, first_message_id, context, client=crm)


def reply(session, *messages, roles=None):
    roles = roles or ["user"] * len(messages)
    transcript = [{"role": r, "content": m} for r, m in zip(roles, messages, strict=True)]
    request = AssistantRequest(
        instructions="", model="offline", transcript=transcript, context=session.context
    )
    request.tools = session
    return offline_reply(request)


@pytest.mark.parametrize(
    "text", ["quero falar com um atendente", "me passa para um humano", "falar com alguém"]
)
def test_it_hands_over_when_asked_for_a_person(crm, text):
    session = make_session(crm)
    assert reply(session, text) == ""  # the engine sends the handoff message
    assert session.handoff_reason
    assert session.calls[0]["name"] == "transfer_to_human"


@pytest.mark.parametrize(
    "text", ["quero o boleto", "minha fatura", "preciso da segunda via", "me manda o pix"]
)
def test_it_lists_the_invoices_of_a_checked_customer(crm, text):
    answer = reply(make_session(crm), text)
    assert "R$ 99,90" in answer and "Linha digitável: 34191.79001 01043.510047" in answer


def test_it_shows_no_invoice_to_an_unchecked_customer(crm):
    answer = reply(make_session(crm, checked=False), "segunda via do boleto")
    assert offline_actions.NOT_CHECKED in answer and "99,90" not in answer


def test_it_says_the_crm_is_unavailable_instead_of_inventing(crm):
    crm.fail = True
    assert offline_actions.UNAVAILABLE in reply(make_session(crm), "boleto")


@pytest.mark.parametrize("text", ["estou sem internet", "a internet caiu", "não conecta"])
def test_it_checks_the_connection_and_offers_a_ticket(crm, text):
    session = make_session(crm)
    answer = reply(session, text)
    assert "está offline" in answer
    assert offline_actions.OFFER_TICKET.format(point="PI-1") in answer
    assert Ticket.objects.count() == 0  # only offered


def test_it_tells_of_the_outage_first_and_offers_no_ticket(crm):
    answer = reply(make_session(crm, outages=[OUTAGE]), "sem internet")
    assert "Rompimento de fibra" in answer and "chamado" not in answer


def test_it_opens_the_offered_ticket_on_yes_and_gives_the_protocol(crm):
    session = make_session(crm)
    offer = reply(session, "sem internet")
    answer = reply(session, "sem internet", offer, "sim", roles=["user", "assistant", "user"])
    assert "O número de protocolo é P00001." in answer
    ticket = Ticket.objects.get()
    assert (ticket.point_id, ticket.category) == ("PI-1", "no_connection")


def test_it_opens_one_ticket_when_the_batch_runs_again(crm):
    session = make_session(crm)
    offer = reply(session, "sem internet")
    turn = ["sem internet", offer, "sim"]
    first = reply(session, *turn, roles=["user", "assistant", "user"])
    again = make_session(crm, conversation_id=session.conversation_id)  # the re-run's session
    second = reply(again, *turn, roles=["user", "assistant", "user"])
    assert first == second
    assert Ticket.objects.count() == 1 and len(crm.tickets) == 1


def test_it_does_not_open_a_ticket_on_yes_without_an_offer(crm):
    answer = reply(make_session(crm), "oi", "Olá!", "sim", roles=["user", "assistant", "user"])
    assert "protocolo" not in answer and Ticket.objects.count() == 0


def test_it_offers_a_person_only_when_a_tool_can_call_one(crm):
    session = make_session(crm)
    with_tools = reply(session, "oi")
    request = AssistantRequest(
        instructions="",
        model="offline",
        transcript=[{"role": "user", "content": "oi"}],
        context=session.context,
    )
    without_tools = offline_reply(request)
    assert "chamar um atendente" in with_tools
    assert "atendente" not in without_tools and "segunda via de boleto" in without_tools
