"""The assistant: the real openai SDK against a local fake Responses API, and the offline one."""

import asyncio
import socket
import time
from dataclasses import dataclass, field

import pytest

from conversations.assistant import openai_assistant
from conversations.assistant.offline import (
    ASK_DOCUMENT,
    BILLING_UNKNOWN,
    DOWN_STEPS,
    GREETING,
    INVALID_DOCUMENT,
    SLOW_STEPS,
    offline_reply,
)
from conversations.assistant.offline_actions import NO_HANDOFF
from conversations.assistant.openai_assistant import (
    AssistantError,
    AssistantRequest,
    generate_reply,
)
from conversations.runtime import RuntimeSnapshot
from tests.fakes.responses_api import FakeResponsesAPI


@dataclass
class Context:
    """Stands in for crm_gateway.context.CustomerContext."""

    document_status: str = "unknown"
    masked_document: str = ""
    crm_ok: bool = True
    active_outages: list = field(default_factory=list)
    text: str = ""

    def prompt_text(self) -> str:
        return self.text


OUTAGE = {
    "id": 7,
    "title": "Rompimento de fibra no Centro",
    "message": "Equipe técnica em campo.",
    "regions": ["Centro"],
    "expected_end": "2026-11-25T22:00:00+00:00",
}


def request(*messages: str, roles=None, context=None, **kwargs) -> AssistantRequest:
    roles = roles or ["user"] * len(messages)
    kwargs.setdefault("instructions", "Você é o assistente.")
    kwargs.setdefault("model", "gpt-test")
    return AssistantRequest(
        transcript=[{"role": r, "content": m} for r, m in zip(roles, messages, strict=True)],
        context=context,
        context_text=context.prompt_text() if context else "",
        **kwargs,
    )


@pytest.fixture
def api(settings):
    with FakeResponsesAPI(reply="Olá, tudo certo por aqui!") as fake:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = fake.url
        yield fake


# --- the Responses API over the wire ---------------------------------------------------------


async def test_it_sends_our_transcript_and_instructions_with_store_off(api):
    context = Context(text="Documento: ***.982.247-**. Sem falhas ativas.")
    reply = await generate_reply(
        request(
            "minha internet caiu",
            "Sinto muito! Pode me passar o CPF?",
            "529.982.247-25",
            roles=["user", "assistant", "user"],
            context=context,
            model="gpt-5-mini",
        )
    )
    assert reply.text == "Olá, tudo certo por aqui!"
    assert len(api.calls) == 1
    body = api.calls[0]
    assert body["model"] == "gpt-5-mini"
    assert body["store"] is False
    assert body["input"] == [
        {"role": "user", "content": "minha internet caiu"},
        {"role": "assistant", "content": "Sinto muito! Pode me passar o CPF?"},
        {"role": "user", "content": "529.982.247-25"},
    ]
    assert body["instructions"].startswith("Você é o assistente.")
    assert body["instructions"].endswith("Documento: ***.982.247-**. Sem falhas ativas.")
    wire = api.requests[0]
    assert wire.path == "/v1/responses"
    headers = {name.lower(): value for name, value in wire.headers.items()}
    assert headers["authorization"] == "Bearer test-key"


async def test_it_sends_the_instructions_alone_without_context(api):
    await generate_reply(request("oi"))
    assert api.calls[0]["instructions"] == "Você é o assistente."


async def test_it_retries_a_server_error_then_succeeds(api):
    api.fail_times = 2
    assert (await generate_reply(request("oi"))).text == "Olá, tudo certo por aqui!"
    assert len(api.calls) == 3


async def test_it_fails_after_the_retries(api):
    api.fail_times = 100
    with pytest.raises(AssistantError) as error:
        await generate_reply(request("oi"))
    assert error.value.reason == "HTTP 500 from the LLM API"
    assert len(api.calls) == 1 + openai_assistant.MAX_RETRIES


async def test_it_does_not_retry_a_bad_request(api):
    api.fail_times, api.fail_status = 1, 400
    with pytest.raises(AssistantError, match="HTTP 400"):
        await generate_reply(request("oi"))
    assert len(api.calls) == 1


async def test_it_gives_up_on_a_slow_model_within_the_llm_timeout(api):
    api.delay_s = 10
    started = time.monotonic()
    with pytest.raises(AssistantError) as error:
        await generate_reply(request("oi", timeout_s=0.5))
    assert time.monotonic() - started < 5  # bounded by the LLM timeout, not the SDK's 600 s
    assert error.value.reason == "no reply within 0.5 s"


async def test_it_counts_retries_and_their_pauses_inside_the_llm_timeout(api):
    api.fail_times, api.retry_after_ms = 100, 400  # each failure asks for a 0.4 s pause
    started = time.monotonic()
    with pytest.raises(AssistantError) as error:
        await generate_reply(request("oi", timeout_s=0.6))
    assert time.monotonic() - started < 5
    assert error.value.reason == "no reply within 0.6 s"
    assert len(api.calls) == 2  # the third attempt would have started after the budget


async def test_it_treats_an_empty_reply_as_a_failure(api):
    api.reply = ""
    with pytest.raises(AssistantError, match="empty reply"):
        await generate_reply(request("oi"))


async def test_it_fails_cleanly_when_the_server_is_unreachable(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(AssistantError, match="could not connect to the LLM API"):
        await generate_reply(request("oi", timeout_s=10))


async def test_it_logs_no_message_text_nor_context(api, caplog):
    context = Context(text="Documento: 52998224725")
    await generate_reply(request("meu segredo 123", context=context))
    api.fail_times = 100
    with pytest.raises(AssistantError):
        await generate_reply(request("meu segredo 123", context=context))
    assert "assistant reply from gpt-test" in caplog.text
    assert "assistant failed" in caplog.text
    assert "segredo" not in caplog.text
    assert "52998224725" not in caplog.text


async def test_it_reuses_one_client_per_configuration(api):
    first = openai_assistant.loop_client("k", api.url, 60)
    assert openai_assistant.loop_client("k", api.url, 60) is first
    assert openai_assistant.loop_client("k", api.url, 30) is not first
    assert openai_assistant.loop_client("other", api.url, 60) is not first


def test_it_keeps_clients_apart_per_event_loop(api):
    async def get():
        return openai_assistant.loop_client("k", api.url, 60)

    assert asyncio.run(get()) is not asyncio.run(get())


async def test_it_answers_offline_without_an_api_key(api, settings):
    settings.OPENAI_API_KEY = ""
    reply = await generate_reply(request("minha internet caiu"))
    assert "roteador" in reply.text
    assert api.calls == []


def test_it_shortens_the_error_reason():
    assert len(AssistantError("x" * 1000).reason) == 255


def test_it_builds_a_request_from_the_runtime_settings():
    runtime = RuntimeSnapshot(llm_model="gpt-x", llm_timeout_seconds=42)
    context = Context(text="Cliente sem documento.")
    built = AssistantRequest.for_turn(runtime, [{"role": "user", "content": "oi"}], context)
    assert built.model == "gpt-x"
    assert built.timeout_s == 42
    assert built.instructions == runtime.assistant_instructions
    assert built.context is context
    assert built.full_instructions().endswith("Cliente sem documento.")
    assert AssistantRequest.for_turn(runtime, [], None).context_text == ""


# --- the offline assistant -------------------------------------------------------------------


def test_it_greets_and_offers_help_on_a_plain_greeting():
    reply = offline_reply(request("Oi, bom dia!"))
    assert reply.startswith(GREETING)
    assert "Como posso ajudar?" in reply


def test_it_greets_only_on_first_contact():
    reply = offline_reply(
        request("oi", "Olá!", "minha internet caiu", roles=["user", "assistant", "user"])
    )
    assert GREETING not in reply


@pytest.mark.parametrize(
    "text", ["minha internet caiu", "estou sem internet", "NÃO ESTÁ FUNCIONANDO", "sem conexão"]
)
def test_it_helps_with_a_connection_that_is_down(text):
    reply = offline_reply(request(text))
    assert DOWN_STEPS in reply
    assert ASK_DOCUMENT in reply  # the document is unknown


def test_it_helps_with_a_slow_connection():
    reply = offline_reply(request("a internet está muito lenta", context=Context("known")))
    assert SLOW_STEPS in reply
    assert ASK_DOCUMENT not in reply


@pytest.mark.parametrize("text", ["quero o boleto", "minha fatura", "preciso da segunda via"])
def test_it_helps_with_billing(text):
    reply = offline_reply(request(text))
    assert BILLING_UNKNOWN in reply
    assert ASK_DOCUMENT in reply


def test_it_asks_politely_to_check_an_invalid_document():
    reply = offline_reply(request("123.456.789-00", context=Context("invalid")))
    assert INVALID_DOCUMENT in reply
    assert "Encontrei" not in reply


def test_it_thanks_for_a_valid_document_and_carries_on_with_the_earlier_question():
    context = Context("known", masked_document="***.982.247-**")
    reply = offline_reply(
        request(
            "minha internet caiu",
            "Pode me passar o CPF?",
            "529.982.247-25",
            roles=["user", "assistant", "user"],
            context=context,
        )
    )
    assert "Encontrei o cadastro do documento ***.982.247-**" in reply
    assert "529.982.247-25" not in reply
    assert DOWN_STEPS in reply
    assert ASK_DOCUMENT not in reply


def test_it_says_when_the_crm_could_not_be_read():
    reply = offline_reply(request("52998224725", context=Context("known", crm_ok=False)))
    assert "não consegui consultar o seu cadastro" in reply


def test_it_mentions_an_active_outage_instead_of_router_steps():
    reply = offline_reply(
        request("estou sem internet", context=Context("known", active_outages=[OUTAGE]))
    )
    assert "Rompimento de fibra no Centro" in reply
    assert "Equipe técnica em campo." in reply
    assert "Previsão de normalização: 25/11 às 19:00" in reply  # America/Sao_Paulo
    assert DOWN_STEPS not in reply


def test_it_answers_anything_else_with_the_topic_of_the_last_message():
    reply = offline_reply(request("qual o horário de funcionamento da loja de vocês no sábado?"))
    assert 'Sobre a sua mensagem "qual o horário de funcionamento da loja de…"' in reply


def test_it_acknowledges_a_burst_as_one_batch():
    reply = offline_reply(request("oi", "tudo bem?", "minha internet caiu"))
    assert "Recebi as suas 3 mensagens." in reply
    assert DOWN_STEPS in reply


def test_it_does_not_promise_a_person_without_tools():
    reply = offline_reply(request("quero falar com um atendente"))
    assert reply == NO_HANDOFF  # nothing would hand the conversation over


def test_it_is_deterministic():
    made = request(
        "a internet caiu", "e preciso do boleto", context=Context(active_outages=[OUTAGE])
    )
    assert len({offline_reply(made) for _ in range(5)}) == 1


def test_it_copes_with_an_empty_transcript():
    assert "Como posso ajudar?" in offline_reply(request())
