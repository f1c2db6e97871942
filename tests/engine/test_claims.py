"""conversations.engine.claims: the queue of record's units of work (run on SQLite here, on PostgreSQL
with DATABASE_URL set, where begin_turn travels as one query)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from conversations.engine import claims, peeks
from conversations.models import Conversation, Customer, Message, Turn
from tests.fakes.postgres import backend_pid, pid_of, waits_on_a_lock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation():
    customer = Customer.objects.create(wa_id="5511900000002", reply_wa_id="551100000002")
    return Conversation.objects.create(customer=customer)


def inbound(conversation, text, state=Message.State.PENDING):
    return Message.objects.create(
        conversation=conversation, direction="in", text=text, state=state, provider_id=text
    )


def test_has_recent_pending_sees_only_pending_messages_within_the_grace(conversation):
    message = inbound(conversation, "a")
    assert claims.has_recent_pending(conversation.pk)
    past = timezone.now() - timedelta(seconds=claims.PENDING_GRACE_S + 1)
    Message.objects.filter(pk=message.pk).update(created_at=past)
    assert not claims.has_recent_pending(conversation.pk)
    assert claims.has_pending(conversation.pk)  # still pending: the sweeper re-wakes it
    inbound(conversation, "b", state=Message.State.PROCESSING)
    assert not claims.has_recent_pending(conversation.pk)


def test_begin_turn_claims_every_pending_message_in_order_with_the_history(conversation):
    earlier = inbound(conversation, "antes", state=Message.State.ANSWERED)
    first, second = inbound(conversation, "um"), inbound(conversation, "dois")
    begun = claims.begin_turn(conversation.pk, lock_wait_ms=1, debounce_wait_ms=2, history_window=5)
    assert [m.pk for m in begun.batch] == [first.pk, second.pk]
    assert {m.state for m in Message.objects.filter(turn=begun.turn)} == {Message.State.PROCESSING}
    if begun.history is None:  # read apart on SQLite
        begun.history = claims.history(conversation.pk, begun.turn, [first.pk, second.pk], 5)
    assert [m.pk for m in begun.history] == [earlier.pk]
    stored = Turn.objects.get(pk=begun.turn.pk)
    assert (stored.lock_wait_ms, stored.debounce_wait_ms) == (1, 2)


def _claim_more_after_a_begun_turn(conversation):
    """A turn claims `um`; `dois` and `tres` arrive; claim_more takes them, with the history
    before the whole batch (the answered message only)."""
    earlier = inbound(conversation, "antes", state=Message.State.ANSWERED)
    first = inbound(conversation, "um")
    begun = claims.begin_turn(conversation.pk, lock_wait_ms=0, debounce_wait_ms=0)
    second, third = inbound(conversation, "dois"), inbound(conversation, "tres")
    claimed = claims.claim_more(begun.turn, history_window=5)
    assert [m.pk for m in claimed.batch] == [second.pk, third.pk]
    assert {m.turn_id for m in Message.objects.filter(pk__in=[second.pk, third.pk])} == {
        begun.turn.pk
    }
    batch_ids = [first.pk, second.pk, third.pk]
    history = claims.history(conversation.pk, begun.turn, batch_ids, 5)
    assert [m.pk for m in history] == [earlier.pk]
    assert claims.claim_more(begun.turn, history_window=5) is None  # nothing left
    return claimed


def test_claim_more_takes_what_arrived_during_the_turn(conversation):
    claimed = _claim_more_after_a_begun_turn(conversation)
    assert claimed.history is None  # SQLite: read apart, with history()


@pytest.mark.live
def test_claim_more_on_postgresql_reads_the_history_in_the_same_query(
    live_database_url, conversation
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        claimed = _claim_more_after_a_begun_turn(conversation)
    assert [m.text for m in claimed.history] == ["antes"]
    claim = [q for q in queries if "UPDATE conversations_message SET state" in q["sql"]]
    assert len(claim) == 3  # begin_turn's query, then claim_more's two (history included)
    assert all("FOR NO KEY UPDATE" in q["sql"] for q in claim)


def test_begin_turn_leaves_no_turn_when_nothing_is_pending(conversation):
    inbound(conversation, "já respondida", state=Message.State.ANSWERED)
    assert claims.begin_turn(conversation.pk, lock_wait_ms=0, debounce_wait_ms=0) is None
    assert not Turn.objects.exists()


# A message stored without a wake (an earlier one was pending) racing the claim that takes the
# earlier one, on this machine's PostgreSQL: the claim must wait for that delivery's commit and
# take both, or the later message would be left pending with no wake coming.


def _begin(conversation) -> list[int]:
    begun = claims.begin_turn(conversation.pk, lock_wait_ms=0, debounce_wait_ms=0, history_window=5)
    return [m.pk for m in begun.batch]


def _claim_more(conversation) -> list[int]:
    return [m.pk for m in claims.claim_pending(Turn.objects.create(conversation=conversation))]


def _claim_more_of_a_running_turn(conversation) -> list[int]:
    claimed = claims.claim_more(Turn.objects.create(conversation=conversation), history_window=5)
    return [] if claimed is None else [m.pk for m in claimed.batch]


def _skip_for_a_person(conversation) -> list[int]:
    peeks.peek(conversation.pk)
    return list(
        Message.objects.filter(state=Message.State.SKIPPED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@pytest.mark.live
@pytest.mark.parametrize(
    "claimant", [_begin, _claim_more, _claim_more_of_a_running_turn, _skip_for_a_person]
)
def test_a_claim_takes_the_message_stored_without_a_wake_meanwhile(
    live_database_url, conversation, claimant, monkeypatch
):
    import threading

    from django.db import connection

    from conversations.webhook import ingest
    from conversations.whatsapp.payloads import InboundMessage

    assert connection.vendor == "postgresql"
    if claimant is _skip_for_a_person:
        Conversation.objects.filter(pk=conversation.pk).update(handler=Conversation.Handler.HUMAN)
    earlier = inbound(conversation, "a")
    checked, go = threading.Event(), threading.Event()
    has_recent_pending = claims.has_recent_pending

    def check_then_pause(conversation_id):
        found = has_recent_pending(conversation_id)
        checked.set()  # the delivery has looked for pending messages and not committed yet
        go.wait(timeout=10)
        return found

    monkeypatch.setattr(claims, "has_recent_pending", check_then_pause)
    stored, claimed, pids = [], [], {}

    def deliver():
        try:
            item = InboundMessage(
                wamid="wamid.LATER", wa_id=conversation.customer.wa_id, type="text", text="b"
            )
            # Inside a transaction ingest goes statement by statement, through this check.
            with transaction.atomic():
                stored.append(ingest._store_once(item))
        finally:
            connection.close()

    def claim():
        try:
            pids["claim"] = backend_pid()
            claimed.append(claimant(conversation))
        finally:
            connection.close()

    delivery = threading.Thread(target=deliver)
    delivery.start()
    assert checked.wait(timeout=10)
    claimer = threading.Thread(target=claim)
    claimer.start()
    try:
        assert waits_on_a_lock(pid_of("claim", pids)), "the claim did not wait for the delivery"
    finally:
        go.set()
        delivery.join(timeout=10)
        claimer.join(timeout=10)
    later = stored[0].message
    assert stored[0].needs_wake is False  # it saw the earlier message pending
    assert claimed == [[earlier.pk, later.pk]]
    assert not Message.objects.filter(state=Message.State.PENDING).exists()


@pytest.mark.live
@pytest.mark.parametrize(
    "claimant", [_begin, _claim_more, _claim_more_of_a_running_turn, _skip_for_a_person]
)
def test_a_claim_takes_the_message_stored_in_one_query_without_a_wake_meanwhile(
    live_database_url, conversation, claimant
):
    """The same race when the delivery is one query (ingest outside a transaction): it is held
    inside that query, after it has locked the conversation's row and before it commits, by a
    transaction that holds the same wamid uncommitted, then rolls back."""
    import threading

    from django.db import connection

    from conversations.webhook import ingest
    from conversations.whatsapp.payloads import InboundMessage

    assert connection.vendor == "postgresql"
    if claimant is _skip_for_a_person:
        Conversation.objects.filter(pk=conversation.pk).update(handler=Conversation.Handler.HUMAN)
    earlier = inbound(conversation, "a")
    holding, release = threading.Event(), threading.Event()
    stored, claimed, pids = [], [], {}

    class RollBack(Exception):
        pass

    def hold_the_wamid():
        try:
            with transaction.atomic():
                Message.objects.create(
                    conversation=conversation, direction="out", provider_id="wamid.LATER"
                )
                holding.set()
                release.wait(timeout=10)
                raise RollBack
        except RollBack:
            pass
        finally:
            connection.close()

    def run_recording_pid(name, fn):
        try:
            pids[name] = backend_pid()
            fn()
        finally:
            connection.close()

    def deliver():
        item = InboundMessage(
            wamid="wamid.LATER", wa_id=conversation.customer.wa_id, type="text", text="b"
        )
        stored.append(ingest._store_once(item))

    holder = threading.Thread(target=hold_the_wamid)
    holder.start()
    assert holding.wait(timeout=10)
    delivery = threading.Thread(target=run_recording_pid, args=("delivery", deliver))
    claimer = threading.Thread(
        target=run_recording_pid, args=("claim", lambda: claimed.append(claimant(conversation)))
    )
    try:
        delivery.start()
        assert waits_on_a_lock(pid_of("delivery", pids)), "the delivery was not held"
        claimer.start()
        assert waits_on_a_lock(pid_of("claim", pids)), "the claim did not wait"
    finally:
        release.set()
        for thread in (holder, delivery, claimer):
            thread.join(timeout=10)
    assert stored[0].needs_wake is False  # it saw the earlier message pending
    assert claimed == [[earlier.pk, stored[0].message.pk]]
    assert not Message.objects.filter(state=Message.State.PENDING).exists()


@pytest.mark.live
def test_the_pending_queries_read_only_the_conversations_pending_messages(
    live_database_url, conversation
):
    """On statistics from an empty table (autovacuum off, or a fresh database) the planner took
    message_inbound_work for these and read every pending message of every conversation: each
    must use message_pending_by_conv, which holds only pending inbound messages, by conversation."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_message")  # the table is empty here
    others = [
        Conversation.objects.create(customer=Customer.objects.create(wa_id=f"55219000{n:05d}"))
        for n in range(20)
    ]
    Message.objects.bulk_create(
        Message(conversation=other, direction="in", text="x", provider_id=f"w.{other.pk}.{n}")
        for other in others
        for n in range(100)  # a table of some pages: on two, reading it all is cheapest
    )
    inbound(conversation, "a")
    pending = [claims.IN.value, claims.PENDING.value]
    queries = {
        "has_pending": (claims._HAS_PENDING_SQL, [conversation.pk, *pending]),
        "has_recent_pending": (
            claims._HAS_RECENT_PENDING_SQL,
            [conversation.pk, *pending, claims.recent_since()],
        ),
        "peek": (peeks._PEEK_SQL, [*pending, *pending, conversation.pk]),
        "claim": (
            claims._CLAIM_SQL,
            ["processing", timezone.now(), None, timezone.now(), conversation.pk, *pending],
        ),
        "begin_turn's claim": (
            claims._CLAIM_FOR_NEW_TURN_SQL,
            ["processing", timezone.now(), timezone.now(), conversation.pk, *pending],
        ),
    }
    with connection.cursor() as cursor:
        for name, (sql, params) in queries.items():
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "message_pending_by_conv" in plan, f"{name}:\n{plan}"
