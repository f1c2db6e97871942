"""`/metrics`: the auth rules, and every metric moving when its event happens (through the real
webhook, engine, demo CRM, cached lookup, offline assistant and console sender)."""

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from conversations import events, heartbeat, metrics
from conversations.assistant import openai_assistant
from conversations.assistant.openai_assistant import AssistantRequest
from conversations.engine import turn_end, turn_loop
from conversations.engine.locks import ConversationLock
from conversations.models import Conversation, Message, Turn
from crm_gateway.breaker import crm_breaker
from tests.fakes.engine import configure, new_conversation, short_lived_connections  # noqa: F401
from tests.fakes.responses_api import FakeResponsesAPI
from tests.fakes.whatsapp_payloads import (
    post_signed_text,
)

TOKEN = "metrics-test-token"
SECRET = "metrics-test-secret"
CUSTOMER = "5521987650009"
CPF = "529.982.247-25"  # a demo CRM customer


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client=None) -> dict[tuple, float]:
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_is_a_404_while_the_token_is_unset(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_it_answers_401_without_the_right_bearer_token(client, token, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert b"supportbot" not in response.content


@pytest.mark.django_db
def test_it_answers_the_prometheus_text_format_with_the_token(client, token):
    samples = scrape(client)
    assert ("supportbot_workers_alive", ()) in samples
    assert ("supportbot_crm_breaker_open", ()) in samples


@pytest.mark.django_db
def test_it_refuses_other_methods(client, token):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


# --- every metric moves when its event happens -----------------------------------------------


def post_text(text: str) -> int:
    return post_signed_text(CUSTOMER, text, SECRET)


@pytest.fixture
def embedded(settings, monkeypatch, token):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.WHATSAPP_ACCESS_TOKEN = ""  # console sender
    settings.CRM_BASE_URL = ""  # demo CRM
    settings.OPENAI_API_KEY = ""  # offline assistant
    monkeypatch.setattr(events, "send_wake", lambda conversation_id: True)
    configure()


@pytest.mark.django_db(transaction=True)
async def test_a_conversation_moves_the_webhook_ingest_turn_reply_lock_and_crm_metrics(embedded):
    before = await sync_to_async(scrape)()
    assert await sync_to_async(post_text)(f"minha internet caiu, CPF {CPF}") == 200
    conversation = await Conversation.objects.aget(customer__wa_id=CUSTOMER)
    pending = await sync_to_async(scrape)()
    await turn_loop.run_turns(conversation.pk)
    assert await sync_to_async(post_text)(f"de novo, CPF {CPF}") == 200
    await turn_loop.run_turns(conversation.pk)
    after = await sync_to_async(scrape)()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("supportbot_webhook_requests_total", status=200) == 2
    assert moved("supportbot_messages_received_total", type="text") == 2
    assert moved("supportbot_turns_total", outcome="answered") == 2
    assert moved("supportbot_replies_sent_total", kind="assistant") == 2
    assert moved("supportbot_turn_duration_seconds_count") == 2
    assert moved("supportbot_first_reply_seconds_count") == 2
    assert moved("supportbot_lock_wait_seconds_count") == 2
    assert moved("supportbot_crm_request_seconds_count", operation="points") == 1
    assert moved("supportbot_crm_request_seconds_count", operation="customer") == 1
    # Each turn looks up the points and the customer record (the phones on file): two misses
    # for the first message, two hits for the second.
    assert moved("supportbot_crm_cache_lookups_total", result="miss") == 2
    assert moved("supportbot_crm_cache_lookups_total", result="hit") == 2
    # The gauges read the database: one message was pending before its turn.
    assert value(pending, "supportbot_messages_pending") == 1
    assert value(pending, "supportbot_oldest_pending_message_seconds") >= 0
    assert value(after, "supportbot_messages_pending") == 0


@pytest.mark.django_db
def test_a_refused_webhook_counts_its_status(embedded):
    before = metrics.counter_value(metrics.WEBHOOK_REQUESTS, status=403)
    response = Client().post("/webhooks/whatsapp/", data=b"{}", content_type="application/json")
    assert response.status_code == 403
    assert metrics.counter_value(metrics.WEBHOOK_REQUESTS, status=403) == before + 1


@pytest.mark.django_db
def test_the_fallback_handoff_staff_and_notice_kinds_are_counted(embedded):
    from conversations.whatsapp.sender import send_text

    conversation = new_conversation()
    for kind in (Message.Kind.FALLBACK, Message.Kind.HANDOFF, Message.Kind.STAFF):
        send_text(conversation, "texto", kind=kind)
    send_text(conversation, "aviso", kind=Message.Kind.NOTICE)
    samples = scrape()
    for kind in ("fallback", "handoff", "staff", "outage_notice"):
        assert value(samples, "supportbot_replies_sent_total", kind=kind) == 1


@pytest.mark.django_db
def test_turn_tokens_are_counted_from_the_turn_record(embedded):
    conversation = new_conversation()
    turn = Turn.objects.create(conversation=conversation)
    turn_end.finish_turn(
        turn, outcome=Turn.Outcome.ANSWERED, input_tokens=120, cached_input_tokens=20
    )
    turn.output_tokens = 7  # issue 12 may fill the turn object rather than the fields
    turn_end.count_ended(turn, {"outcome": Turn.Outcome.ANSWERED})
    samples = scrape()
    assert value(samples, "supportbot_llm_tokens_total", kind="input") == 120
    assert value(samples, "supportbot_llm_tokens_total", kind="cached_input") == 20
    assert value(samples, "supportbot_llm_tokens_total", kind="output") == 7
    assert value(samples, "supportbot_turns_total", outcome="answered") == 2


@pytest.mark.django_db
async def test_an_llm_request_is_timed(embedded, settings):
    with FakeResponsesAPI(reply="Olá!") as api:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = api.url
        request = AssistantRequest(
            transcript=[{"role": "user", "content": "oi"}],
            context=None,
            context_text="",
            instructions="Você é o assistente.",
            model="gpt-test",
        )
        assert (await openai_assistant.generate_reply(request)).text == "Olá!"
    samples = await sync_to_async(scrape)()
    assert value(samples, "supportbot_llm_request_seconds_count") == 1


@pytest.mark.django_db
def test_a_lost_lock_is_counted(embedded):
    lock = ConversationLock(4242, ttl_s=5)
    assert lock.try_acquire()
    cache.delete(lock.key)  # expired, or taken over
    assert lock.renew() is False
    assert value(scrape(), "supportbot_lock_lost_total") == 1


@pytest.mark.django_db
def test_the_gauges_show_waiting_conversations_turns_workers_and_the_breaker(embedded):
    waiting = new_conversation(handler=Conversation.Handler.HUMAN)
    Turn.objects.create(conversation=waiting)  # running
    heartbeat.beat("machine-a:10")
    heartbeat.beat("machine-b:20")
    for _ in range(crm_breaker.threshold):
        crm_breaker.record_failure()
    samples = scrape()
    assert value(samples, "supportbot_conversations_waiting_for_staff") == 1
    assert value(samples, "supportbot_turns_in_flight") == 1
    assert value(samples, "supportbot_workers_alive") == 2
    assert value(samples, "supportbot_crm_breaker_open") == 1


@pytest.mark.django_db
def test_a_crashed_turn_is_counted_as_crashed(embedded):
    turn = Turn.objects.create(conversation=new_conversation())
    turn_end.finish_turn(turn, detail="crashed: RuntimeError")
    assert value(scrape(), "supportbot_turns_total", outcome="crashed") == 1
