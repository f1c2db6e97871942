"""conversations.rows: plain-SQL INSERT and UPDATE of one row, as Model.save() would write it."""

import pytest
from django.db import IntegrityError, connection
from django.db.models.signals import post_save, pre_save

from conversations import rows
from conversations.models import Conversation, Customer, Message, Turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation():
    customer = Customer.objects.create(wa_id="5511900000001")
    return Conversation.objects.create(customer=customer)


def test_it_inserts_a_turn_with_its_defaults_and_start_time(conversation):
    turn = rows.insert(Turn(conversation=conversation, lock_wait_ms=3, debounce_wait_ms=40))
    stored = Turn.objects.get(pk=turn.pk)
    assert (stored.lock_wait_ms, stored.debounce_wait_ms) == (3, 40)
    assert stored.outcome == Turn.Outcome.RUNNING
    assert stored.started_at == turn.started_at
    assert stored.finished_at is None
    assert not turn._state.adding


def test_it_inserts_a_message_with_its_json_fields(conversation):
    message = rows.insert(
        Message(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            text="Olá",
            kind=Message.Kind.REPLY,
            delivery_status=Message.Delivery.QUEUED,
            delivery_errors=[{"reason": "x"}],
        )
    )
    stored = Message.objects.get(pk=message.pk)
    assert stored.text == "Olá"
    assert stored.raw == {}
    assert stored.delivery_errors == [{"reason": "x"}]
    assert stored.created_at == message.created_at == stored.updated_at


def test_it_updates_one_row_and_its_auto_now_field(conversation):
    message = Message.objects.create(conversation=conversation, direction="out", text="a")
    assert rows.update(Message, message.pk, delivery_status=Message.Delivery.SENT) == 1
    stored = Message.objects.get(pk=message.pk)
    assert stored.delivery_status == Message.Delivery.SENT
    assert stored.updated_at > message.updated_at
    assert stored.text == "a"


def test_it_reports_a_missing_row(conversation):
    assert rows.update(Conversation, conversation.pk + 1000, handler="human") == 0


def _insert_select(message: Message, conversation_id: int) -> list[tuple]:
    sql, params = rows.insert_select_statement(
        message,
        ("conversations_conversation c WHERE c.id = %s", [conversation_id]),
        {"conversation_id": "c.id"},
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_it_inserts_from_a_select_the_selected_values_and_returns_them(conversation):
    message = Message(direction="in", text="oi", raw={"id": "wamid.A"}, state="pending")
    [(pk, conversation_id)] = _insert_select(message, conversation.pk)
    stored = Message.objects.get(pk=pk)
    assert conversation_id == conversation.pk == stored.conversation_id
    assert (stored.text, stored.raw, stored.state) == ("oi", {"id": "wamid.A"}, "pending")
    assert stored.created_at == message.created_at  # filled as save() fills it


def test_it_inserts_nothing_when_the_select_finds_no_row(conversation):
    assert _insert_select(Message(direction="in", text="oi"), conversation.pk + 1) == []
    assert not Message.objects.exists()


def test_its_on_conflict_clause_skips_a_row_that_would_conflict(conversation):
    sql, params = rows.insert_select_statement(
        Customer(wa_id="", reply_wa_id=""),
        ("conversations_customer cu WHERE cu.id = %s", [conversation.customer_id]),
        {"wa_id": "cu.wa_id"},
        on_conflict="ON CONFLICT (wa_id) DO NOTHING",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchall() == []
    assert Customer.objects.count() == 1


@pytest.mark.parametrize("model", [Turn, Message, Conversation])
def test_no_save_signal_listens_to_the_models_written_here(model):
    # rows sends no signals: a receiver added to these models would silently miss their writes.
    assert not post_save.has_listeners(model)
    assert not pre_save.has_listeners(model)


def test_it_runs_statements_as_one_and_returns_the_last_ones_row(conversation):
    message = Message.objects.create(conversation=conversation, direction="out", text="a")
    row = rows.in_one_round_trip(
        [
            rows.update_statement(Message, message.pk, text="b"),
            ("SELECT text FROM conversations_message WHERE id = %s", [message.pk]),
        ]
    )
    assert row == ("b",)
    assert rows.in_one_round_trip([rows.update_statement(Message, message.pk, text="c")]) is None


@pytest.mark.django_db(transaction=True)
def test_a_failing_statement_undoes_the_ones_before_it(conversation):
    message = Message.objects.create(conversation=conversation, direction="out", text="a")
    turn = Turn.objects.create(conversation=conversation)
    with pytest.raises(IntegrityError):
        rows.in_one_round_trip(
            [
                rows.update_statement(Message, message.pk, text="b"),
                rows.update_statement(Turn, turn.pk, batch_size=-1),  # a positive integer field
            ]
        )
    assert Message.objects.get(pk=message.pk).text == "a"
