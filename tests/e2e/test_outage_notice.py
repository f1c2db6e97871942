"""End to end in one process: a signed webhook carrying a CPF whose installation point is under
an active outage gets the outage notice, then the reply, through the real webhook, engine,
context, demo CRM, cached lookup, offline assistant and console sender."""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations import events
from conversations.engine import turn_loop
from conversations.models import Conversation, Message
from crm_gateway.models import OutageNotice
from crm_gateway.outages import open_outage
from tests.fakes.engine import configure, short_lived_connections  # noqa: F401 (autouse)
from tests.fakes.whatsapp_payloads import encode, notification, signed_headers, text_message

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "e2e-outage-secret"
CUSTOMER = "5521987650001"
# Demo CRM: this CPF has installation points in "Zona Norte" and "Zona Sul".
CPF_IN_ZONA_NORTE = "111.444.777-35"


@pytest.fixture
def scaled(settings, monkeypatch):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.WHATSAPP_ACCESS_TOKEN = ""  # console sender
    settings.CRM_BASE_URL = ""  # built-in demo CRM
    monkeypatch.setattr(events, "send_wake", lambda conversation_id: True)
    configure()


def post_text(text: str) -> int:
    body = encode(notification([text_message(CUSTOMER, text)]))
    response = Client().post(
        "/webhooks/whatsapp/",
        data=body,
        content_type="application/json",
        headers=signed_headers(SECRET, body),
    )
    return response.status_code


def outbound(conversation_id: int) -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(
            conversation_id=conversation_id, direction=Message.Direction.OUTBOUND
        ).values_list("kind", "text")
    )


async def test_it_sends_the_notice_once_to_a_customer_in_an_affected_region(scaled):
    outage = await sync_to_async(open_outage)(
        regions=["zona norte"], message="Rompimento de fibra na Zona Norte; previsão 20h."
    )

    assert (
        await sync_to_async(post_text)(f"minha internet caiu, meu CPF é {CPF_IN_ZONA_NORTE}") == 200
    )
    conversation = await Conversation.objects.aget(customer__wa_id=CUSTOMER)
    await turn_loop.run_turns(conversation.pk)

    sent = await sync_to_async(outbound)(conversation.pk)
    assert [kind for kind, _ in sent] == [Message.Kind.NOTICE, Message.Kind.REPLY]
    assert "Rompimento de fibra na Zona Norte" in sent[0][1]
    assert await OutageNotice.objects.filter(outage=outage, conversation=conversation).acount() == 1

    assert await sync_to_async(post_text)("e agora?") == 200
    await turn_loop.run_turns(conversation.pk)

    sent = await sync_to_async(outbound)(conversation.pk)
    assert [kind for kind, _ in sent] == [
        Message.Kind.NOTICE,
        Message.Kind.REPLY,
        Message.Kind.REPLY,
    ]
    states = await sync_to_async(list)(
        Message.objects.filter(direction=Message.Direction.INBOUND).values_list("state", flat=True)
    )
    assert states == [Message.State.ANSWERED, Message.State.ANSWERED]


async def test_it_sends_no_notice_outside_the_affected_regions(scaled):
    await sync_to_async(open_outage)(regions=["Campinas"], message="Falha em Campinas.")

    assert await sync_to_async(post_text)(f"sem internet, CPF {CPF_IN_ZONA_NORTE}") == 200
    conversation = await Conversation.objects.aget(customer__wa_id=CUSTOMER)
    await turn_loop.run_turns(conversation.pk)

    sent = await sync_to_async(outbound)(conversation.pk)
    assert [kind for kind, _ in sent] == [Message.Kind.REPLY]
