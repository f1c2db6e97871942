"""Tickets: one per idempotency key, across a retry, a second call and a worker killed after the
CRM answered."""

import pytest

from conversations.models import Conversation, Customer
from crm_gateway import tickets
from crm_gateway.client import CrmError
from crm_gateway.models import Ticket
from tests.fakes.crm_api import ToolCrm

pytestmark = pytest.mark.django_db

CPF = "52998224725"


@pytest.fixture
def conversation():
    customer = Customer.objects.create(wa_id="5511987650001", document=CPF)
    return Conversation.objects.create(customer=customer)


def open_one(conversation, crm, point_id="PI-1", category="no_connection"):
    return tickets.open_ticket(
        document=CPF,
        conversation_id=conversation.pk,
        key=tickets.idempotency_key(conversation.pk, 10, point_id),
        point_id=point_id,
        category=category,
        description="  sem   sinal ",
        timeout=2,
        client=crm,
    )


def test_it_derives_the_same_key_from_the_same_batch_and_point():
    assert tickets.idempotency_key(1, 10, "PI-1") == tickets.idempotency_key(1, 10, "PI-1")
    assert tickets.idempotency_key(1, 10, "PI-1") != tickets.idempotency_key(1, 10, "PI-2")
    assert tickets.idempotency_key(1, 10, "PI-1") != tickets.idempotency_key(1, 11, "PI-1")


def test_it_opens_a_ticket_and_keeps_it(conversation):
    crm = ToolCrm()
    ticket = open_one(conversation, crm)
    assert (ticket.protocol, ticket.description) == ("P00001", "sem sinal")
    assert crm.ticket_calls[0]["description"] == "sem sinal"


def test_it_asks_the_crm_once_when_called_twice(conversation):
    crm = ToolCrm()
    assert open_one(conversation, crm).pk == open_one(conversation, crm).pk
    assert len(crm.ticket_calls) == 1 and Ticket.objects.count() == 1


def test_it_gets_the_same_ticket_after_a_worker_died_once_the_crm_answered(conversation):
    crm = ToolCrm()
    key = tickets.idempotency_key(conversation.pk, 10, "PI-1")
    # The first worker's call reached the CRM, which opened the ticket; the worker died before
    # storing it. The batch runs again (a new turn, the same first message and point).
    ticket = {"point_id": "PI-1", "category": "no_connection", "description": "x"}
    protocol = crm.open_ticket(CPF, ticket | {"idempotency_key": key}, timeout=2)
    assert Ticket.objects.count() == 0
    rerun = open_one(conversation, crm)
    assert rerun.protocol == protocol
    assert [call["idempotency_key"] for call in crm.ticket_calls] == [key, key]
    assert len(crm.tickets) == 1 and Ticket.objects.count() == 1


def test_it_refuses_an_unknown_category_without_calling_the_crm(conversation):
    crm = ToolCrm()
    with pytest.raises(ValueError, match="unknown category"):
        open_one(conversation, crm, category="refund")
    assert crm.ticket_calls == [] and Ticket.objects.count() == 0


def test_it_keeps_nothing_when_the_crm_fails(conversation):
    crm = ToolCrm(fail=True)
    with pytest.raises(CrmError):
        open_one(conversation, crm)
    assert Ticket.objects.count() == 0


def test_the_admin_lists_tickets_read_only(admin_client, conversation):
    ticket = open_one(conversation, ToolCrm())
    html = admin_client.get("/admin/crm_gateway/ticket/").content.decode()
    assert ticket.protocol in html and "PI-1" in html
    page = admin_client.get(f"/admin/crm_gateway/ticket/{ticket.pk}/change/").content.decode()
    assert 'name="protocol"' not in page  # nobody edits what the CRM holds
    assert admin_client.get("/admin/crm_gateway/ticket/add/").status_code == 403


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_ticket_when_two_attempts_race_on_postgresql(live_database_url):
    import threading

    from django.db import close_old_connections, connection

    assert connection.vendor == "postgresql"
    customer = Customer.objects.create(wa_id="5511987650001", document=CPF)
    talk = Conversation.objects.create(customer=customer)
    crm = ToolCrm()
    barrier, protocols, errors = threading.Barrier(2), [], []

    def attempt():
        try:
            barrier.wait()
            protocols.append(open_one(talk, crm).protocol)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert protocols == ["P00001", "P00001"]
    assert Ticket.objects.count() == 1 and len(crm.tickets) == 1
