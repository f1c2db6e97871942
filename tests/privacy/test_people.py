"""Finding the person an LGPD request names (conversations.privacy.people)."""

import pytest

from conversations.models import Customer
from conversations.privacy.people import NotAPerson, find_customers
from tests.fakes.privacy import CPF, CPF_PUNCTUATED, NUMBER, OLD_FORM_NUMBER

pytestmark = pytest.mark.django_db

CNPJ = "11222333000181"


@pytest.fixture
def maria():
    return Customer.objects.create(wa_id=NUMBER, document=CPF)


@pytest.mark.parametrize(
    "query",
    [NUMBER, OLD_FORM_NUMBER, "+55 (11) 98765-4321", "+55 11 8765-4321", CPF, CPF_PUNCTUATED],
)
def test_it_finds_the_person_by_number_or_document_in_any_common_form(maria, query):
    assert find_customers(query) == [maria]


def test_it_finds_every_number_that_gave_the_same_document(maria):
    other = Customer.objects.create(wa_id="5521998765432", document=CPF)
    Customer.objects.create(wa_id="5531998765432", document=CNPJ)
    assert find_customers(CPF_PUNCTUATED) == [maria, other]
    assert len(find_customers("11.222.333/0001-81")) == 1


def test_it_finds_nobody_for_an_unknown_number_or_document(maria):
    assert find_customers("5511912345678") == []
    assert find_customers(CNPJ) == []


@pytest.mark.parametrize("query", ["", "   ", "maria", "529.982.247-26x", "12", "ab12cd34ef"])
def test_it_refuses_what_is_neither_a_number_nor_a_document(maria, query):
    with pytest.raises(NotAPerson, match="nothing was looked up"):
        find_customers(query)
