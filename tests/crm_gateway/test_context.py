import time

import pytest
from django.core.cache import cache
from django.test import override_settings

from conversations.models import Conversation, Customer, Message, RuntimeSettings
from conversations.runtime import reset_runtime_cache
from conversations.whatsapp import sender
from crm_gateway import keys
from crm_gateway.client import CrmClient
from crm_gateway.context import (
    DEFAULT_NOTICE_TEMPLATE,
    CustomerContext,
    build_customer_context,
    claim_notice,
    notice_text,
)
from crm_gateway.customers import parse_customer
from crm_gateway.outages import open_outage
from tests.fakes.caches import DOWN_CACHES
from tests.fakes.crm_api import POINT, CountingClient, use_runtime

pytestmark = pytest.mark.django_db

CPF = "52998224725"
ON_FILE = "5511987654321"  # the conversation() default number, on file for CPF
TEMPLATE = "Aviso: falha na sua região. {message}"


@pytest.fixture
def crm(monkeypatch):
    """An in-process CRM for build_customer_context, and runtime settings without the database."""
    use_runtime(monkeypatch, crm_timeout_seconds=1, outage_notice_template=TEMPLATE)
    client = CountingClient(
        {CPF: [POINT], "11144477735": []},
        records={CPF: {"name": "Maria", "phones": [ON_FILE]}},
    )
    monkeypatch.setattr("crm_gateway.lookup.get_crm_client", lambda: client)
    return client


def conversation(document: str = "", wa_id: str = "5511987654321") -> Conversation:
    customer = Customer.objects.create(wa_id=wa_id, document=document)
    return Conversation.objects.create(customer=customer)


def test_it_says_unknown_without_a_document_and_never_calls_the_crm(crm):
    talk = conversation()
    context = build_customer_context(talk.pk, ["oi, estou sem internet"])
    assert (context.document_status, context.masked_document) == ("unknown", "")
    assert context.installation_points == [] and context.notices == []
    assert context.crm_ok
    assert "não informado" in context.prompt_text()
    assert crm.calls == []


def test_it_stores_a_valid_document_and_looks_up_its_points(crm):
    talk = conversation()
    context = build_customer_context(talk.pk, ["meu cpf é 529.982.247-25"])
    assert context.document_status == "known"
    assert context.masked_document == "***.982.247-**"
    assert context.installation_points == [POINT]
    assert Customer.objects.get().document == CPF
    assert crm.calls == [CPF]


def test_it_uses_the_stored_document_in_later_turns(crm):
    talk = conversation(document=CPF)
    context = build_customer_context(talk.pk, ["continua sem sinal"])
    assert (context.document_status, context.installation_points) == ("known", [POINT])
    build_customer_context(talk.pk, ["e agora?"])
    assert crm.calls == [CPF]  # the second turn is a cache hit


def test_it_never_sends_an_invalid_document_to_the_crm(crm):
    talk = conversation()
    context = build_customer_context(talk.pk, ["cpf 123.456.789-00"])
    assert (context.document_status, context.masked_document) == ("invalid", "")
    assert "inválido" in context.prompt_text()
    assert Customer.objects.get().document == ""
    assert crm.calls == []


def test_it_keeps_the_stored_document_when_a_new_one_is_invalid(crm):
    talk = conversation(document=CPF)
    context = build_customer_context(talk.pk, ["o cpf certo é 123.456.789-00"])
    assert context.document_status == "invalid"
    assert context.masked_document == "***.982.247-**"
    assert context.installation_points == [POINT]
    assert Customer.objects.get().document == CPF
    assert crm.calls == [CPF]


def test_it_does_not_take_a_phone_number_for_a_document(crm):
    talk = conversation()
    context = build_customer_context(talk.pk, ["me liga no 11987654321"])
    assert context.document_status == "unknown"
    assert crm.calls == []


def test_it_offers_the_notice_of_an_outage_in_the_customers_region(crm):
    outage = open_outage(regions=["centro"], message="Fibra rompida, previsão 18h.")
    open_outage(regions=["Zona Sul"], message="Outra região.")
    talk = conversation(document=CPF)
    context = build_customer_context(talk.pk, ["sem internet"])
    assert [item["id"] for item in context.active_outages] == [outage.pk]
    assert context.notices == [
        (outage.pk, "Aviso: falha na sua região. Fibra rompida, previsão 18h.")
    ]
    assert "FALHA MASSIVA" in context.prompt_text()


def test_it_sends_each_notice_once_per_conversation_and_outage(crm):
    outage = open_outage(regions=["Centro"], message="Fibra rompida.")
    talk = conversation(document=CPF)
    context = build_customer_context(talk.pk, ["sem internet"])
    assert claim_notice(outage.pk, talk.pk) is True
    assert claim_notice(outage.pk, talk.pk) is False
    again = build_customer_context(talk.pk, ["e aí?"])
    assert again.notices == [] and again.active_outages == context.active_outages
    other = Conversation.objects.create(
        customer=Customer.objects.create(wa_id="5511900000002", document=CPF)
    )
    assert build_customer_context(other.pk, ["oi"]).notices == context.notices
    assert claim_notice(outage.pk, other.pk) is True
    second_outage = open_outage(regions=["Centro"], message="Mais uma.")
    assert [n[0] for n in build_customer_context(talk.pk, ["?"]).notices] == [second_outage.pk]


def test_it_sends_no_notice_for_a_resolved_outage(crm):
    outage = open_outage(regions=["Centro"], message="x")
    talk = conversation(document=CPF)
    outage.resolve()
    context = build_customer_context(talk.pk, ["oi"])
    assert context.active_outages == [] and context.notices == []
    assert claim_notice(outage.pk, talk.pk) is False


def test_it_tells_the_assistant_when_the_customer_has_no_points(crm):
    talk = conversation(document="11144477735")
    context = build_customer_context(talk.pk, ["oi"])
    assert context.installation_points == [] and context.crm_ok
    assert "Nenhum ponto de instalação" in context.prompt_text()


def test_it_replies_anyway_when_the_crm_fails(crm):
    crm.fail = True
    open_outage(regions=["Centro"], message="x")
    talk = conversation(document=CPF)
    context = build_customer_context(talk.pk, ["oi"])
    assert (context.document_status, context.crm_ok) == ("known", False)
    assert context.installation_points == [] and context.notices == []
    assert "não respondeu" in context.prompt_text()


def test_it_serves_the_stale_copy_and_still_notices_when_the_crm_fails_later(crm):
    outage = open_outage(regions=["Centro"], message="x")
    talk = conversation(document=CPF)
    build_customer_context(talk.pk, ["oi"])
    cache.delete(keys.points_key(CPF))  # the fresh copy expired
    crm.fail = True
    context = build_customer_context(talk.pk, ["oi"])
    assert context.crm_ok and context.installation_points == [POINT]
    assert [n[0] for n in context.notices] == [outage.pk]
    assert crm.calls == [CPF, CPF]


def test_it_returns_within_the_crm_timeout_when_the_crm_hangs(crm):
    crm.delay_s = 5
    talk = conversation(document=CPF)
    started = time.monotonic()
    context = build_customer_context(talk.pk, ["oi"])
    assert time.monotonic() - started < 2
    assert context.crm_ok is False


def test_it_never_raises_when_the_lookup_has_a_bug(crm, monkeypatch):
    def broken(document):
        raise RuntimeError("bug")

    monkeypatch.setattr("crm_gateway.lookup.lookup_points", broken)
    context = build_customer_context(conversation(document=CPF).pk, ["oi"])
    assert context.crm_ok is False


@override_settings(CACHES=DOWN_CACHES)
def test_it_works_when_redis_is_down(crm):
    outage = open_outage(regions=["Centro"], message="x")
    talk = conversation()
    context = build_customer_context(talk.pk, ["529.982.247-25"])
    assert context.installation_points == [POINT] and context.crm_ok
    assert [n[0] for n in context.notices] == [outage.pk]


def test_it_never_puts_the_full_document_in_the_prompt(crm):
    open_outage(regions=["Centro"], message="x", expected_end=None)
    talk = conversation()
    context = build_customer_context(talk.pk, ["529.982.247-25"])
    text = context.prompt_text()
    assert CPF not in text and "529.982.247-25" not in text
    assert "***.982.247-**" in text and "Rua Augusta" in text


def test_it_puts_addresses_in_the_prompt_only_for_a_number_on_file(crm):
    checked = build_customer_context(conversation().pk, ["529.982.247-25"])
    stranger = build_customer_context(conversation(wa_id="5521912345678").pk, ["529.982.247-25"])
    assert checked.identity_checked and not stranger.identity_checked
    assert "Rua Augusta" in checked.prompt_text()
    assert "Rua Augusta" not in stranger.prompt_text()
    assert "NÃO está confirmada" in stranger.prompt_text()
    assert stranger.installation_points == [POINT]  # still used for the outage's region


def test_it_treats_a_crm_without_customer_records_as_never_checked(crm, monkeypatch):
    plain = CountingClient({CPF: [POINT]})
    del plain.records  # the base class's fetch_customer: not supported
    monkeypatch.setattr(CountingClient, "fetch_customer", CrmClient.fetch_customer)
    monkeypatch.setattr("crm_gateway.lookup.get_crm_client", lambda: plain)
    context = build_customer_context(conversation().pk, ["529.982.247-25"])
    assert not context.identity_checked and context.crm_ok
    assert "Rua Augusta" not in context.prompt_text()


def test_it_matches_a_number_on_file_without_the_ninth_digit_or_country_code(crm):
    # What an HTTP CRM's record becomes (parse_customer): "(11) 8765-4321" is our number.
    crm.records[CPF] = parse_customer({"name": "Maria", "phones": ["(11) 8765-4321"]})
    context = build_customer_context(conversation().pk, ["529.982.247-25"])
    assert context.identity_checked


def test_it_shows_the_expected_end_in_local_time():
    context = CustomerContext(
        document_status="known",
        masked_document="***.982.247-**",
        installation_points=[POINT],
        active_outages=[
            {
                "id": 1,
                "title": "Fibra",
                "message": "x",
                "regions": ["Centro"],
                "expected_end": "2099-01-01T21:00:00+00:00",
            }
        ],
    )
    assert "01/01/2099 18:00" in context.prompt_text()  # America/Sao_Paulo


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("Aviso: {message} Obrigado.", "Aviso: Fibra rompida. Obrigado."),
        ("Aviso sem marcador.", "Aviso sem marcador. Fibra rompida."),
        ("Chaves {{literais}} e {message}", "Chaves {literais} e Fibra rompida."),
        ("Chave solta { e {message}", "Chave solta { e Fibra rompida."),
        ("Outro {nome} e {message}", "Outro {nome} e Fibra rompida."),
        ("Só {nome}", "Só {nome} Fibra rompida."),
        ("", DEFAULT_NOTICE_TEMPLATE.format(message="Fibra rompida.")),
    ],
)
def test_it_builds_the_notice_from_any_template(template, text):
    assert notice_text(template, "Fibra rompida.") == text


def test_it_reads_the_notice_template_from_the_real_runtime_settings(monkeypatch):
    client = CountingClient()
    monkeypatch.setattr("crm_gateway.lookup.get_crm_client", lambda: client)
    RuntimeSettings.objects.create(outage_notice_template="ATENÇÃO! {message}")
    reset_runtime_cache()
    try:
        outage = open_outage(regions=["Centro"], message="Fibra rompida.")
        context = build_customer_context(conversation(document=CPF).pk, ["oi"])
    finally:
        reset_runtime_cache()
    assert context.notices == [(outage.pk, "ATENÇÃO! Fibra rompida.")]


def test_a_message_with_a_cpf_in_an_affected_region_gets_the_notice_through_the_sender(crm):
    """End to end at the context level: the engine does exactly this with each notice."""
    outage = open_outage(regions=["Centro"], message="Fibra rompida na Av. Paulista.")
    talk = conversation()
    context = build_customer_context(talk.pk, ["oi", "meu cpf é 529.982.247-25"])
    for outage_id, text in context.notices:
        if claim_notice(outage_id, talk.pk):
            sender.send_text(talk, text, kind="notice")
    again = build_customer_context(talk.pk, ["ainda sem internet"])
    for outage_id, text in again.notices:
        if claim_notice(outage_id, talk.pk):
            sender.send_text(talk, text, kind="notice")
    sent = Message.objects.filter(conversation=talk, kind="notice")
    assert [m.text for m in sent] == ["Aviso: falha na sua região. Fibra rompida na Av. Paulista."]
    assert sent[0].direction == "out" and outage.notices.count() == 1


@override_settings(CRM_BASE_URL="")
def test_it_works_with_the_demo_crm_in_embedded_mode(monkeypatch):
    use_runtime(monkeypatch, outage_notice_template=TEMPLATE)
    outage = open_outage(regions=["zona norte"], message="Manutenção na Zona Norte.")
    talk = conversation()
    context = build_customer_context(talk.pk, ["cpf 111.444.777-35"])
    assert {point["region"] for point in context.installation_points} == {"Zona Norte", "Zona Sul"}
    assert context.notices == [(outage.pk, "Aviso: falha na sua região. Manutenção na Zona Norte.")]
