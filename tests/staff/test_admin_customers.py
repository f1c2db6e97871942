"""conversations.staff.admin_customers: the customer list and page, masked numbers and documents,
search and filters, the full document behind its permission, the CRM refresh action."""

import pytest

from conversations.models import Conversation, Customer, Message
from tests.fakes.admin import (
    CPF,
    PHONE,
    history,  # noqa: F401 (fixture)
    page,
    trusted_client,  # noqa: F401 (fixture)
    viewer_client,  # noqa: F401 (fixture)
)


def test_the_customer_list_masks_documents_and_numbers(viewer_client, history):
    html = page(viewer_client, "/admin/conversations/customer/")
    assert "Maria" in html
    assert "***.982.247-**" in html
    assert CPF not in html and "529.982.247-25" not in html
    assert "5511*******21" in html
    assert PHONE not in html


def test_the_lists_show_dates_short_so_no_column_is_pushed_off_the_screen(viewer_client, history):
    import re

    for url in ("/admin/conversations/customer/", "/admin/conversations/conversation/"):
        html = page(viewer_client, url)
        assert re.search(r"\d\d/\d\d/\d{4} \d\d:\d\d", html), url
        assert " de 20" not in html  # not "2 de Dezembro de 2026 às 03:40"
    conversation = history["customer"].conversations.first()
    html = page(viewer_client, f"/admin/conversations/conversation/{conversation.pk}/change/")
    inlines = html[html.index("inline-group") :]  # the turns and messages, under the form
    assert re.search(r"\d\d/\d\d/\d{4} \d\d:\d\d", inlines)
    assert " de 20" not in inlines


def test_even_a_superuser_sees_masked_documents_in_the_list(admin_client, history):
    html = page(admin_client, "/admin/conversations/customer/")
    assert "***.982.247-**" in html
    assert CPF not in html and PHONE not in html


@pytest.mark.parametrize(
    "term",
    [
        "529.982.247-25",
        "529 982 247 25",
        "52998224725",
        "Maria",
        "+55 (11) 98765-4321",
        "5511 8765-4321",
        "4321",
    ],
)
def test_it_finds_customers_by_document_name_or_number_as_typed(viewer_client, history, term):
    Customer.objects.create(wa_id="5521912345678", profile_name="João")
    response = viewer_client.get("/admin/conversations/customer/", {"q": term})
    customers = list(response.context["cl"].result_list)
    assert customers == [history["customer"]]


def test_a_search_for_nobody_finds_nobody(viewer_client, history):
    response = viewer_client.get("/admin/conversations/customer/", {"q": "111.444.777-35"})
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"document": "yes"}, {"Maria"}),
        ({"document": "no"}, {"João", "Ana"}),
        ({"open": "human"}, {"João"}),
        ({"open": "bot"}, {"Maria"}),
        ({"open": "none"}, {"Ana"}),
    ],
)
def test_it_filters_customers(viewer_client, history, query, expected):
    joao = Customer.objects.create(wa_id="5521912345678", profile_name="João")
    Conversation.objects.create(customer=joao, handler=Conversation.Handler.HUMAN)
    Customer.objects.create(wa_id="5531912345678", profile_name="Ana")
    response = viewer_client.get("/admin/conversations/customer/", query)
    assert {c.profile_name for c in response.context["cl"].result_list} == expected


def test_the_customer_page_shows_the_whole_history_in_time_order(viewer_client, history):
    html = page(viewer_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    texts = [
        "primeira mensagem",
        "primeira resposta",
        "internet caiu",
        "meu cpf",
        "estamos verificando",
    ]
    positions = [html.index(text) for text in texts]
    assert positions == sorted(positions)
    table = html[html.index("customer-history") :]
    for shown in (
        "Do cliente",
        "Para o cliente",
        "Respondida",
        "Lida",
        "Entregue",
        "Resposta do assistente",
    ):
        assert shown in table
    assert f"respondida pelo turno #{history['turn'].pk}" in table
    assert f"enviada pelo turno #{history['turn'].pk}" in table
    assert f"/admin/conversations/conversation/{history['old'].pk}/change/" in table
    assert PHONE in html  # staff reply to this number: shown on the customer's own page


def test_the_customer_page_escapes_message_text(viewer_client, history):
    Message.objects.create(conversation=history["new"], direction="in", text="<script>x</script>")
    html = page(viewer_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_full_document_needs_the_permission(viewer_client, history):
    html = page(viewer_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "***.982.247-**" in html
    assert "529.982.247-25" not in html and CPF not in html


def test_staff_with_the_permission_see_the_full_document(trusted_client, history):
    html = page(trusted_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "529.982.247-25" in html


def test_an_alphanumeric_cnpj_is_shown_formatted(trusted_client, history):
    Customer.objects.filter(pk=history["customer"].pk).update(document="12ABC34501DE35")
    html = page(trusted_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert "12.ABC.345/01DE-35" in html


def test_customers_cannot_be_added_by_hand(admin_client, db):
    assert admin_client.get("/admin/conversations/customer/add/").status_code == 403


def test_the_customer_list_offers_the_crm_refresh_action(admin_client, history):
    html = page(admin_client, "/admin/conversations/customer/")
    assert 'value="refresh_crm_data"' in html


def test_it_finds_a_mobile_typed_without_its_ninth_digit(viewer_client, history):
    Customer.objects.filter(pk=history["customer"].pk).update(reply_wa_id="")
    response = viewer_client.get("/admin/conversations/customer/", {"q": "55 11 8765-4321"})
    assert list(response.context["cl"].result_list) == [history["customer"]]


def test_the_crm_refresh_action_runs_from_the_customer_list(admin_client, db):
    customer = Customer.objects.create(wa_id=PHONE)  # no document: nothing to ask the CRM
    response = admin_client.post(
        "/admin/conversations/customer/",
        {"action": "refresh_crm_data", "_selected_action": [customer.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]]
