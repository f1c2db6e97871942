"""The extended CRM contract over HTTP (customer record, connection, invoices, tickets), the
parsers' checks, and the phones a customer is checked against."""

import pytest

from crm_gateway.breaker import CircuitBreaker
from crm_gateway.client import CrmError, CrmNotSupported, HttpCrmClient
from crm_gateway.customers import (
    normalise_phone,
    parse_connection,
    parse_customer,
    parse_invoices,
    parse_protocol,
)
from tests.fakes.crm_api import FakeCrm
from tests.fakes.http import FakeHTTPServer, Reply

CPF = "52998224725"
TICKET = {
    "point_id": "PI-1",
    "category": "no_connection",
    "description": "sem sinal",
    "idempotency_key": "k1",
}


@pytest.fixture
def crm():
    fake = FakeCrm()
    fake.records = {CPF: {"name": "Maria", "phones": ["(11) 98765-0001"], "email": "x"}}
    fake.connections = {"PI-1": {"online": True, "last_seen": None, "signal_dbm": -19}}
    fake.invoices = {CPF: [{"id": 7, "due_date": "2026-01-10", "amount": 99.9, "status": "a"}]}
    with FakeHTTPServer(fake) as server:
        fake.server = server
        yield fake


def client(crm) -> HttpCrmClient:
    made = HttpCrmClient(
        base_url=crm.server.url, token="crm-token", breaker=CircuitBreaker(threshold=100)
    )
    made.BACKOFF_BASE_S = 0.01
    return made


def test_it_gets_the_customer_record_with_normalised_phones(crm):
    assert client(crm).customer(CPF, timeout=2) == {"name": "Maria", "phones": ["5511987650001"]}
    assert crm.server.requests[0].path == f"/customers/{CPF}"


def test_it_says_none_for_an_unknown_customer(crm):
    assert client(crm).customer("11144477735", timeout=2) is None


def test_it_gets_the_connection_status(crm):
    status = client(crm).connection_status("PI-1", timeout=2)
    assert status == {"online": True, "last_seen": None, "signal_dbm": -19.0}
    assert crm.server.requests[0].path == "/installation-points/PI-1/connection"


@pytest.mark.parametrize("status", [404, 501])
def test_it_says_not_supported_on_404_or_501(crm, status):
    crm.script = [Reply(status, {})]
    with pytest.raises(CrmNotSupported):
        client(crm).connection_status("PI-1", timeout=2)


def test_it_gets_the_open_invoices(crm):
    [invoice] = client(crm).open_invoices(CPF, timeout=2)
    assert invoice == {"id": "7", "due_date": "2026-01-10", "amount": "99.90", "status": "a"}
    assert crm.server.requests[0].path == f"/customers/{CPF}/invoices?status=open"


def test_it_opens_a_ticket_once_per_key(crm):
    first = client(crm).open_ticket(CPF, TICKET, timeout=2)
    second = client(crm).open_ticket(CPF, TICKET, timeout=2)
    assert first == second == "P00001"
    assert [r.method for r in crm.server.requests] == ["POST", "POST"]
    assert crm.server.requests[0].json() == TICKET


def test_it_retries_a_ticket_after_a_5xx_with_the_same_key(crm):
    crm.script = [Reply(503, {})]
    assert client(crm).open_ticket(CPF, TICKET, timeout=2) == "P00001"
    keys = [r.json()["idempotency_key"] for r in crm.server.requests]
    assert keys == ["k1", "k1"] and len(crm.tickets) == 1


def test_it_treats_a_bad_body_as_a_crm_failure(crm):
    crm.script = [Reply(200, {"online": "yes"})]
    with pytest.raises(CrmError):
        client(crm).connection_status("PI-1", timeout=2)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("(11) 98765-0001", "5511987650001"),
        ("+55 11 98765-0001", "5511987650001"),
        ("11 8765-0001", "5511987650001"),  # before the ninth digit
        ("551187650001", "5511987650001"),
        ("2133334444", "552133334444"),  # a landline keeps eight digits
        ("ramal 12", None),
        ("123", None),
        (11987650001, None),
    ],
)
def test_it_normalises_crm_phones_like_whatsapp_numbers(raw, normalised):
    assert normalise_phone(raw) == normalised


@pytest.mark.parametrize(
    "body",
    [[], {"name": 1, "phones": []}, {"name": "x"}, {"name": "x", "phones": "11987650001"}],
)
def test_it_refuses_a_customer_record_of_another_shape(body):
    with pytest.raises(CrmError):
        parse_customer(body)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"online": 1},
        {"online": True, "last_seen": "yesterday"},
        {"online": True, "last_seen": None, "signal_dbm": "strong"},
        {"online": True, "signal_dbm": True},
    ],
)
def test_it_refuses_a_connection_of_another_shape(body):
    with pytest.raises(CrmError):
        parse_connection(body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        ["x"],
        [{"id": 1, "due_date": "2026-01-01", "status": "a"}],
        [{"id": 1, "due_date": "2026-01-01", "amount": "lots", "status": "a"}],
        [{"id": 1, "due_date": "2026-01-01", "amount": True, "status": "a"}],
        [{"id": [1], "due_date": "2026-01-01", "amount": 1, "status": "a"}],
    ],
)
def test_it_refuses_invoices_of_another_shape(body):
    with pytest.raises(CrmError):
        parse_invoices(body)


def test_it_keeps_only_the_optional_invoice_fields_it_was_given():
    [invoice] = parse_invoices(
        [{"id": "F", "due_date": "d", "amount": "10", "status": "a", "pix_code": " 000201 "}]
    )
    assert invoice == {"id": "F", "due_date": "d", "amount": "10.00", "status": "a"} | {
        "pix_code": "000201"
    }


@pytest.mark.parametrize("body", [{}, [], {"protocol": ""}, {"protocol": "x" * 65}])
def test_it_refuses_a_ticket_answer_without_a_protocol(body):
    with pytest.raises(CrmError):
        parse_protocol(body)
