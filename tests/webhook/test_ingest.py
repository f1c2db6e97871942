import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import events
from conversations.engine import claims
from conversations.models import Conversation, Customer, Message
from conversations.webhook import ingest
from conversations.webhook.ingest import ingest_notification, store_inbound
from conversations.webhook.statuses import apply_status
from conversations.whatsapp.payloads import InboundMessage, StatusUpdate, parse_notification
from tests.fakes import whatsapp_payloads as wa
from tests.fakes.postgres import backend_pid, pid_of, waits_on_a_lock

pytestmark = pytest.mark.django_db

SENDER = "5511987654321"
OLD_FORM = "551187654321"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def item(wamid="wamid.A", *, wa_id=SENDER, text="oi", sent_at=T0, **fields) -> InboundMessage:
    return InboundMessage(
        wamid=wamid, wa_id=wa_id, type="text", text=text, sent_at=sent_at, **fields
    )


def outbound(wamid: str, delivery_status: str = "sent") -> Message:
    customer, _ = Customer.objects.get_or_create(wa_id=SENDER)
    conversation, _ = Conversation.objects.get_or_create(customer=customer, status="open")
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        provider_id=wamid,
        kind=Message.Kind.REPLY,
        text="Olá!",
        delivery_status=delivery_status,
    )


def test_it_stores_a_pending_message_for_a_new_customer():
    message = store_inbound(
        item(profile_name="Maria", from_number=OLD_FORM, raw={"id": "wamid.A", "x": 1})
    )
    message.refresh_from_db()
    assert message.direction == "in"
    assert message.state == Message.State.PENDING
    assert (message.provider_id, message.type, message.text) == ("wamid.A", "text", "oi")
    assert message.raw == {"id": "wamid.A", "x": 1}
    assert message.sent_at == T0
    customer = message.conversation.customer
    assert (customer.wa_id, customer.reply_wa_id, customer.profile_name) == (
        SENDER,
        OLD_FORM,
        "Maria",
    )
    assert message.conversation.status == Conversation.Status.OPEN
    assert message.conversation.last_inbound_at == T0


def test_it_returns_the_message_exactly_as_stored_with_the_model_defaults():
    returned = store_inbound(item(raw={"id": "wamid.A"}))
    stored = Message.objects.get()
    for field in Message._meta.concrete_fields:
        assert getattr(returned, field.attname) == getattr(stored, field.attname), field.name
    assert (stored.kind, stored.delivery_status, stored.delivery_errors) == ("", "", [])
    assert (stored.claimed_at, stored.turn_id, stored.failure_reason) == (None, None, "")


def test_it_stores_a_duplicate_wamid_once_and_changes_nothing():
    first = store_inbound(item(profile_name="Maria", from_number=SENDER))
    customer_before = Customer.objects.get()
    again = item(
        text="changed", profile_name="Other", from_number=OLD_FORM, sent_at=T0 + timedelta(hours=1)
    )
    assert store_inbound(again) is None
    assert Message.objects.count() == 1
    assert Message.objects.get().text == "oi"
    customer = Customer.objects.get()
    assert (customer.profile_name, customer.reply_wa_id, customer.last_seen_at) == (
        "Maria",
        SENDER,
        customer_before.last_seen_at,
    )
    assert Conversation.objects.get().last_inbound_at == first.sent_at


def test_it_reraises_integrity_errors_that_are_not_a_duplicate_and_rolls_back(monkeypatch):
    def violate_something_else(customer_id):
        raise IntegrityError("another constraint")

    # After the customer's upsert, before the message: all of it must roll back.
    monkeypatch.setattr(ingest, "_open_conversation", violate_something_else)
    with pytest.raises(IntegrityError):
        store_inbound(item(profile_name="Maria"))
    assert not Customer.objects.exists()
    assert not Conversation.objects.exists()


def test_it_keeps_one_customer_for_both_forms_of_a_number_and_replies_to_the_latest():
    store_inbound(item("wamid.1", from_number=SENDER))
    later = timezone.now() + timedelta(seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        store_inbound(item("wamid.2", from_number=OLD_FORM))
    customer = Customer.objects.get()
    assert customer.reply_wa_id == OLD_FORM
    assert customer.last_seen_at == later
    assert Conversation.objects.count() == 1
    assert Message.objects.filter(conversation__customer=customer).count() == 2


def test_it_keeps_the_profile_name_when_a_delivery_has_none():
    store_inbound(item("wamid.1", profile_name="Maria"))
    store_inbound(item("wamid.2"))
    assert Customer.objects.get().profile_name == "Maria"


def test_it_opens_a_new_conversation_when_the_last_one_is_closed():
    first = store_inbound(item("wamid.1"))
    Conversation.objects.update(status=Conversation.Status.CLOSED)
    second = store_inbound(item("wamid.2"))
    assert second.conversation_id != first.conversation_id
    assert Conversation.objects.filter(status="open").count() == 1


def test_it_stores_pending_also_when_a_human_handles_the_conversation():
    store_inbound(item("wamid.1"))
    Conversation.objects.update(handler=Conversation.Handler.HUMAN)
    assert store_inbound(item("wamid.2")).state == Message.State.PENDING


def test_it_reuses_the_conversation_another_delivery_opened_meanwhile():
    customer = Customer.objects.create(wa_id=SENDER)
    # Opened by another delivery after our lookup missed it: our insert hits the constraint.
    existing = Conversation.objects.create(customer=customer)
    assert ingest._open_conversation(customer.pk) == existing.pk


def test_it_never_moves_last_inbound_at_backwards():
    store_inbound(item("wamid.new", sent_at=T0))
    store_inbound(item("wamid.old", sent_at=T0 - timedelta(days=2)))
    assert Conversation.objects.get().last_inbound_at == T0


def test_it_uses_the_receipt_time_when_the_timestamp_is_unknown():
    before = timezone.now()
    message = store_inbound(item(sent_at=None))
    assert message.sent_at >= before
    assert Conversation.objects.get().last_inbound_at == message.sent_at


def test_it_wakes_the_conversation_after_commit(django_capture_on_commit_callbacks):
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        message = store_inbound(item())
        send_wake.assert_not_called()  # not before the commit
    assert len(callbacks) == 2  # the wake, and the staff desk's "message" event
    send_wake.assert_called_once_with(message.conversation_id)


def test_it_tells_the_staff_desk_about_a_stored_message_and_a_delivery_status(
    django_capture_on_commit_callbacks,
):
    with (
        mock.patch("conversations.events.send_to_staff") as send_to_staff,
        django_capture_on_commit_callbacks(execute=True),
    ):
        message = store_inbound(item(), wake=False)
        reply = Message.objects.create(
            conversation_id=message.conversation_id,
            direction=Message.Direction.OUTBOUND,
            provider_id="wamid.out-1",
            delivery_status=Message.Delivery.SENT,
        )
        apply_status(StatusUpdate(wamid="wamid.out-1", status="read", errors=[]))
        apply_status(StatusUpdate(wamid="wamid.unknown", status="read", errors=[]))
    events = [call.args[0] for call in send_to_staff.call_args_list]
    assert [(e["event"], e["data"]) for e in events] == [
        ("message", {"message_id": message.pk, "direction": "in"}),
        ("delivery", {"message_id": reply.pk, "status": "read"}),
    ]


def test_it_does_not_wake_for_a_duplicate(django_capture_on_commit_callbacks):
    store_inbound(item())
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert store_inbound(item()) is None
    send_wake.assert_not_called()


def test_it_wakes_each_conversation_once_per_notification(django_capture_on_commit_callbacks):
    other = "5521987651234"
    body = wa.notification(
        [
            wa.text_message(SENDER, "1"),
            wa.text_message(OLD_FORM, "2"),
            wa.text_message(other, "3"),
            wa.text_message(SENDER, "4"),
        ]
    )
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = ingest_notification(parse_notification(body))
    assert result.stored == 4
    mine = Conversation.objects.get(customer__wa_id=SENDER).pk
    theirs = Conversation.objects.get(customer__wa_id=other).pk
    assert [c.args[0] for c in send_wake.call_args_list] == [mine, theirs]


def test_it_puts_a_json_wake_event_on_the_inbound_channel(django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    with django_capture_on_commit_callbacks(execute=True):
        message = store_inbound(item())
    event = async_to_sync(layer.receive)(events.INBOUND_CHANNEL)
    assert event == {"type": "conversation.wake", "conversation_id": message.conversation_id}


# Statuses


@pytest.mark.parametrize(
    ("start", "new", "expected"),
    [
        ("queued", "sent", "sent"),
        ("sent", "delivered", "delivered"),
        ("sent", "read", "read"),
        ("delivered", "read", "read"),
        ("", "delivered", "delivered"),
        ("sent", "failed", "failed"),
        ("delivered", "failed", "failed"),
        # out of order: never backwards
        ("read", "delivered", "read"),
        ("read", "sent", "read"),
        ("delivered", "sent", "delivered"),
        ("read", "failed", "read"),
        ("failed", "read", "failed"),
        ("failed", "sent", "failed"),
        ("sent", "sent", "sent"),
        ("sent", "deleted", "sent"),  # a status we do not track
    ],
)
def test_it_moves_delivery_status_only_forward(start, new, expected):
    outbound("wamid.OUT", start)
    changed = apply_status(StatusUpdate(wamid="wamid.OUT", status=new))
    assert Message.objects.get().delivery_status == expected
    assert changed == (start != expected)


def test_it_applies_statuses_arriving_out_of_order_through_the_notification():
    outbound("wamid.OUT", "sent")
    body = wa.notification(
        statuses=[
            wa.status("wamid.OUT", "read"),
            wa.status("wamid.OUT", "delivered"),
            wa.status("wamid.OUT", "sent"),
        ]
    )
    result = ingest_notification(parse_notification(body))
    assert (result.statuses_applied, result.statuses_ignored) == (1, 2)
    assert Message.objects.get().delivery_status == "read"


def test_it_stores_the_errors_of_a_failed_status():
    outbound("wamid.OUT", "sent")
    errors = [{"code": 131047, "title": "Re-engagement message", "message": "more than 24h"}]
    assert apply_status(StatusUpdate(wamid="wamid.OUT", status="failed", errors=errors))
    message = Message.objects.get()
    assert message.delivery_status == "failed"
    assert message.delivery_errors == errors


def test_it_ignores_statuses_for_unknown_ids():
    outbound("wamid.OUT", "sent")
    assert not apply_status(StatusUpdate(wamid="wamid.NOPE", status="read"))
    assert Message.objects.get().delivery_status == "sent"


def test_it_ignores_statuses_for_inbound_messages():
    store_inbound(item("wamid.IN"))
    assert not apply_status(StatusUpdate(wamid="wamid.IN", status="read"))
    assert Message.objects.get().delivery_status == ""


# Two deliveries racing, on this machine's PostgreSQL


def _deliver_concurrently(bodies: list[bytes], secret: str) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def deliver(body: bytes) -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            response = client.post(
                "/webhooks/whatsapp/",
                data=body,
                content_type="application/json",
                headers=wa.signed_headers(secret, body),
            )
            statuses.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return statuses


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_when_two_deliveries_of_one_wamid_race(live_database_url, settings):
    assert connection.vendor == "postgresql"
    settings.WHATSAPP_APP_SECRET = "race-secret"
    for round_ in range(10):
        # A new customer each round, so both deliveries also race to create it and its conversation.
        body = wa.encode(wa.notification([wa.text_message(f"55119876{round_:05d}", "oi")]))
        with mock.patch("conversations.events.send_wake") as send_wake:
            statuses = _deliver_concurrently([body, body], settings.WHATSAPP_APP_SECRET)
        assert statuses == [200, 200]
        send_wake.assert_called_once()
    assert Message.objects.count() == 10
    assert Customer.objects.count() == 10
    assert Conversation.objects.count() == 10


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_when_two_deliveries_to_an_open_conversation_race(
    live_database_url, settings
):
    # The customer has an open conversation: both deliveries take the one-query path.
    settings.WHATSAPP_APP_SECRET = "race-secret"
    store_inbound(item("wamid.FIRST"), wake=False)
    for round_ in range(10):
        body = wa.encode(wa.notification([wa.text_message(SENDER, f"{round_}")]))
        with mock.patch("conversations.events.send_wake"):
            statuses = _deliver_concurrently([body, body], settings.WHATSAPP_APP_SECRET)
        assert statuses == [200, 200]
    assert Message.objects.count() == 11
    assert Conversation.objects.count() == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_when_store_inbound_races_itself(live_database_url):
    assert connection.vendor == "postgresql"
    results: list = []
    barrier = threading.Barrier(2)

    def store() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(store_inbound(item("wamid.RACE"), wake=False))
        finally:
            connection.close()

    threads = [threading.Thread(target=store) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r is None for r in results) == [False, True]
    assert Message.objects.filter(provider_id="wamid.RACE").count() == 1


def test_it_sends_no_wake_while_an_earlier_message_of_the_conversation_is_pending(
    django_capture_on_commit_callbacks,
):
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        first = store_inbound(item("wamid.1"))
        store_inbound(item("wamid.2"))  # the worker woken for wamid.1 takes both
    send_wake.assert_called_once_with(first.conversation_id)


def test_it_wakes_again_once_the_earlier_messages_are_claimed(django_capture_on_commit_callbacks):
    first = store_inbound(item("wamid.1"))
    Message.objects.filter(pk=first.pk).update(state=Message.State.PROCESSING)
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        store_inbound(item("wamid.2"))
    send_wake.assert_called_once_with(first.conversation_id)


def test_it_wakes_when_the_earlier_pending_message_is_past_the_grace(
    django_capture_on_commit_callbacks,
):
    # Its wake may have been lost: this message brings a worker now, not the sweeper later.
    first = store_inbound(item("wamid.1"))
    past = timezone.now() - timedelta(seconds=claims.PENDING_GRACE_S + 1)
    Message.objects.filter(pk=first.pk).update(created_at=past)
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        store_inbound(item("wamid.2"))
        store_inbound(item("wamid.3"))  # wamid.2's wake is on its way
    send_wake.assert_called_once_with(first.conversation_id)


def test_a_notification_wakes_no_conversation_whose_earlier_message_is_pending(
    django_capture_on_commit_callbacks,
):
    store_inbound(item("wamid.1"))
    body = wa.notification([wa.text_message(SENDER, "2"), wa.text_message(SENDER, "3")])
    with (
        mock.patch("conversations.events.send_wake") as send_wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = ingest_notification(parse_notification(body))
    assert (result.stored, result.conversation_ids) == (2, [])
    send_wake.assert_not_called()


# On PostgreSQL outside a transaction (the webhook's case), a message to an open conversation is
# stored in one query: the behaviour above, again, that way. The first message of a customer and
# the first after a closed conversation take the statement-by-statement path, which opens one.


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_message_to_an_open_conversation_takes_one_query(live_database_url):
    assert connection.vendor == "postgresql"
    first = store_inbound(item("wamid.1"), wake=False)
    later = T0 + timedelta(minutes=1)
    with CaptureQueriesContext(connection) as queries:
        returned = store_inbound(
            item("wamid.2", text="caiu", sent_at=later, raw={"id": "wamid.2"}, profile_name="Ana"),
            wake=False,
        )
    assert len(queries) == 1
    stored = Message.objects.get(pk=returned.pk)
    for field in Message._meta.concrete_fields:
        assert getattr(returned, field.attname) == getattr(stored, field.attname), field.name
    assert stored.conversation_id == first.conversation_id
    assert (stored.direction, stored.state, stored.text, stored.raw, stored.sent_at) == (
        "in",
        Message.State.PENDING,
        "caiu",
        {"id": "wamid.2"},
        later,
    )
    assert Conversation.objects.get().last_inbound_at == later
    assert Customer.objects.get().profile_name == "Ana"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_new_customers_first_message_takes_one_query(live_database_url):
    with CaptureQueriesContext(connection) as queries:
        message = store_inbound(item(profile_name="Maria", from_number=OLD_FORM), wake=False)
    assert len(queries) == 1
    conversation = Conversation.objects.get()
    assert message.conversation_id == conversation.pk
    assert conversation.customer.wa_id == SENDER
    assert conversation.last_inbound_at == T0
    # Opened with the model's defaults, as Conversation.objects.create() opens one.
    expected = Conversation.objects.create(customer=Customer.objects.create(wa_id=OLD_FORM))
    for name in ("status", "handler", "handoff_reason", "closed_at"):
        assert getattr(conversation, name) == getattr(expected, name), name


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_conversation_closed_while_a_delivery_waits_gets_a_new_one(
    live_database_url,
):
    # Staff close the conversation between the one query's look for an open one and its touch:
    # the touch finds it closed, nothing but the customer is written, and the statement by
    # statement path opens a new conversation.
    first = store_inbound(item("wamid.1"), wake=False)
    closing, close, stored, pids = threading.Event(), threading.Event(), [], {}

    def staff_close() -> None:
        try:
            with transaction.atomic():
                Conversation.objects.filter(pk=first.conversation_id).update(status="closed")
                closing.set()
                close.wait(timeout=10)
        finally:
            connection.close()

    def deliver() -> None:
        try:
            pids["delivery"] = backend_pid()
            stored.append(store_inbound(item("wamid.2"), wake=False))
        finally:
            connection.close()

    staff, delivery = threading.Thread(target=staff_close), threading.Thread(target=deliver)
    staff.start()
    try:
        assert closing.wait(timeout=10)
        delivery.start()
        assert waits_on_a_lock(pid_of("delivery", pids)), "the delivery did not wait for the close"
    finally:
        close.set()
        staff.join(timeout=10)
        delivery.join(timeout=10)
    assert stored[0].conversation_id != first.conversation_id
    assert Conversation.objects.get(pk=stored[0].conversation_id).status == "open"
    assert Message.objects.count() == 2


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_only_the_first_of_several_pending_messages_asks_for_a_wake(
    live_database_url,
):
    stored = [ingest._store_once(item(f"wamid.{n}")) for n in range(3)]
    assert [s.needs_wake for s in stored] == [True, False, False]
    Message.objects.update(state=Message.State.PROCESSING)
    assert ingest._store_once(item("wamid.3")).needs_wake is True


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
class TestOnPostgresqlInOneQuery:
    """The tests above whose later deliveries find an open conversation."""

    test_a_duplicate_changes_nothing = staticmethod(
        test_it_stores_a_duplicate_wamid_once_and_changes_nothing
    )
    test_both_forms_of_a_number = staticmethod(
        test_it_keeps_one_customer_for_both_forms_of_a_number_and_replies_to_the_latest
    )
    test_profile_name_kept = staticmethod(test_it_keeps_the_profile_name_when_a_delivery_has_none)
    test_closed_conversation = staticmethod(
        test_it_opens_a_new_conversation_when_the_last_one_is_closed
    )
    test_human_handler = staticmethod(
        test_it_stores_pending_also_when_a_human_handles_the_conversation
    )
    test_last_inbound_at = staticmethod(test_it_never_moves_last_inbound_at_backwards)
    test_no_wake_for_a_duplicate = staticmethod(test_it_does_not_wake_for_a_duplicate)
    test_no_wake_while_pending = staticmethod(
        test_it_sends_no_wake_while_an_earlier_message_of_the_conversation_is_pending
    )
    test_wake_once_claimed = staticmethod(test_it_wakes_again_once_the_earlier_messages_are_claimed)
    test_wake_past_the_grace = staticmethod(
        test_it_wakes_when_the_earlier_pending_message_is_past_the_grace
    )
    test_notification = staticmethod(
        test_a_notification_wakes_no_conversation_whose_earlier_message_is_pending
    )

    @pytest.fixture(autouse=True)
    def _postgresql(self, live_database_url):
        assert connection.vendor == "postgresql"


def test_it_hands_over_when_a_failed_status_says_the_window_had_closed():
    reply = outbound("wamid.OUT", "sent")
    errors = [{"code": 131047, "title": "Re-engagement message"}]
    assert apply_status(StatusUpdate(wamid="wamid.OUT", status="failed", errors=errors))
    conversation = Conversation.objects.get(pk=reply.conversation_id)
    assert conversation.handler == Conversation.Handler.HUMAN
    assert conversation.handoff_reason == "fora da janela de 24 h"
    assert conversation.handoff_source == Conversation.HandoffSource.WINDOW


def test_it_does_not_hand_over_for_other_failed_statuses():
    reply = outbound("wamid.OUT", "sent")
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    assert apply_status(StatusUpdate(wamid="wamid.OUT", status="failed", errors=errors))
    conversation = Conversation.objects.get(pk=reply.conversation_id)
    assert conversation.handler == Conversation.Handler.BOT
