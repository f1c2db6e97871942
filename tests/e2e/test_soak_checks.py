"""The soak's checks fail when a promise is broken (each on rows made to break it), its customers
are what the issue asks for, and bad flags are refused before anything is made."""

import importlib.util
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from conversations.models import Conversation, Customer, Message, Turn
from tests.fakes import soak_checks
from tests.fakes.cloud_api import SentText
from tests.fakes.soak_run import Fault, SoakPlan, SoakResult
from tests.fakes.soak_services import CrmCall
from tests.fakes.soak_traffic import DeliveryLog, cpf_of, parse_faults, parse_mix, plan_deliveries

WA_ID = "5511970000001"


def _result(**values) -> SoakResult:
    now = time.time()
    fields = dict(
        plan=SoakPlan(duration_s=60, customers=1),
        started=now - 60,
        sent_until=now - 10,
        drained=True,
        faults=[],
        deliveries=DeliveryLog(accepted=1),
        planned_wamids={"wamid.in-1"},
        cloud_texts=[SentText(WA_ID, "Certo!", "wamid.out-1")],
        crm_calls=[],
        llm_statuses=[200],
        crm_cache_ttl_s=300,
        down_at_end=[],
        tracebacks={},
        logs={},
    )
    return SoakResult(**{**fields, **values})


def _answered_conversation() -> tuple[Conversation, Turn]:
    """One message answered by one turn with one recorded reply (wamid.out-1)."""
    customer = Customer.objects.create(wa_id=WA_ID)
    conversation = Conversation.objects.create(customer=customer)
    turn = Turn.objects.create(
        conversation=conversation, outcome=Turn.Outcome.ANSWERED, finished_at=timezone.now()
    )
    inbound = dict(conversation=conversation, direction=Message.Direction.INBOUND, turn=turn)
    Message.objects.create(provider_id="wamid.in-1", state=Message.State.ANSWERED, **inbound)
    Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        kind=Message.Kind.REPLY,
        provider_id="wamid.out-1",
        turn=turn,
        sent_at=timezone.now(),
    )
    return conversation, turn


def _failed(report) -> list[str]:
    return [invariant.name for invariant in report.failures()]


@pytest.mark.django_db
def test_it_passes_a_clean_run():
    _answered_conversation()

    report = soak_checks.check(_result())

    assert report.ok, report.text()


@pytest.mark.django_db
def test_it_fails_a_reply_sent_twice_without_a_crash_behind_it():
    _answered_conversation()
    texts = [SentText(WA_ID, "Certo!", "wamid.out-1"), SentText(WA_ID, "Certo!", "wamid.out-2")]

    report = soak_checks.check(_result(cloud_texts=texts))

    assert _failed(report) == ["at most one reply per batch (other duplicates)"]


@pytest.mark.django_db
def test_it_counts_a_duplicate_from_the_crash_window_apart():
    conversation, _ = _answered_conversation()
    dead = Turn.objects.create(conversation=conversation, outcome=Turn.Outcome.LOST_LOCK)
    before = timezone.now() - timedelta(minutes=5)
    Turn.objects.filter(pk=dead.pk).update(
        started_at=before, finished_at=before + timedelta(seconds=20)
    )
    # Queued before the call, never recorded as sent: its worker died once WhatsApp took it.
    Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        kind=Message.Kind.REPLY,
        turn=dead,
    )
    texts = [SentText(WA_ID, "Certo!", "wamid.out-0"), SentText(WA_ID, "Certo!", "wamid.out-1")]

    report = soak_checks.check(_result(cloud_texts=texts))

    assert report.ok, report.text()
    assert ("duplicates from the documented crash window", "1") in report.figures


@pytest.mark.django_db
def test_it_fails_a_message_left_pending():
    conversation, _ = _answered_conversation()
    Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        provider_id="wamid.in-2",
        state=Message.State.PENDING,
    )

    report = soak_checks.check(_result(planned_wamids={"wamid.in-1", "wamid.in-2"}))

    assert _failed(report) == ["every inbound message ended"]


@pytest.mark.django_db
def test_it_fails_a_message_that_was_never_stored():
    _answered_conversation()

    report = soak_checks.check(_result(planned_wamids={"wamid.in-1", "wamid.lost"}))

    assert _failed(report) == ["every message sent was stored"]


@pytest.mark.django_db
def test_it_fails_two_turns_of_one_conversation_that_overlapped():
    conversation, turn = _answered_conversation()
    later = Turn.objects.create(
        conversation=conversation, outcome=Turn.Outcome.SUPERSEDED, finished_at=timezone.now()
    )
    Turn.objects.filter(pk=later.pk).update(started_at=turn.finished_at - timedelta(seconds=1))

    report = soak_checks.check(_result())

    assert _failed(report) == ["no two turns of one conversation overlapped"]


@pytest.mark.django_db
def test_it_fails_when_the_seeds_apology_was_sent():
    _answered_conversation()
    apology = "Desculpe, estou processando sua mensagem anterior. Aguarde."
    texts = [SentText(WA_ID, apology, "wamid.out-1")]

    report = soak_checks.check(_result(cloud_texts=texts))

    assert _failed(report) == ["the seed's apology and other concurrency texts sent 0 times"]


@pytest.mark.django_db
def test_it_fails_two_crm_calls_for_one_document_within_the_cache_ttl():
    _answered_conversation()
    now = time.time()
    calls = [CrmCall(now - 50, "52998224725", "ok"), CrmCall(now - 20, "52998224725", "ok")]

    report = soak_checks.check(_result(crm_calls=calls))

    assert _failed(report) == ["CRM calls per document within the cache TTL <= 1"]


@pytest.mark.django_db
def test_it_allows_a_second_crm_call_after_a_redis_restart_emptied_the_cache():
    _answered_conversation()
    now = time.time()
    calls = [
        CrmCall(now - 50, "52998224725", "ok"),
        CrmCall(now - 40, "52998224725", "down"),  # failures fill nothing
        CrmCall(now - 10, "52998224725", "ok"),
    ]
    restart = Fault("redis restart (SHUTDOWN NOSAVE)", now - 30, now - 29)

    report = soak_checks.check(_result(crm_calls=calls, faults=[restart]))

    assert report.ok, report.text()


@pytest.mark.parametrize(
    "spec, error",
    [
        ("fax:1", "unknown message kind 'fax'"),
        ("text:lots", "weight of 'text' is not a number"),
        ("text:-1", "weight of 'text' is negative"),
        ("text:0", "at least one kind with a positive weight"),
        ("", "at least one kind with a positive weight"),
    ],
)
def test_it_refuses_a_bad_message_mix(spec, error):
    with pytest.raises(ValueError, match=error):
        parse_mix(spec)


def test_it_refuses_an_unknown_fault():
    assert parse_faults("worker_kills, redis_restart") == ("worker_kills", "redis_restart")
    with pytest.raises(ValueError, match="unknown faults \\['power_cut'\\]"):
        parse_faults("worker_kills,power_cut")


def test_it_plans_bursts_of_one_to_five_with_some_redelivered_and_some_coming_back():
    deliveries = plan_deliveries(500, 300, seed=17)

    wamids = [delivery.wamid for delivery in deliveries]
    unique = set(wamids)
    duplicated = len(wamids) - len(unique)
    assert 0.03 < duplicated / len(unique) < 0.07
    assert all(0 <= delivery.at_s < 300 for delivery in deliveries)
    bursts = {wamid.rsplit("-", 1)[0] for wamid in unique}
    sizes = [sum(w.startswith(burst + "-") for w in unique) for burst in bursts]
    assert min(sizes) == 1 and max(sizes) == 5
    assert any(burst.endswith("-1") for burst in bursts)  # customers coming back
    again = plan_deliveries(500, 300, seed=17)
    assert [(d.at_s, d.wamid) for d in again] == [(d.at_s, d.wamid) for d in deliveries]


def test_it_makes_valid_cpfs():
    from crm_gateway.documents import validate

    assert {validate(cpf_of(number))[0] for number in (0, 1, 123456789, 999999999)} == {"cpf"}


def _bench_soak():
    path = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
    spec = importlib.util.spec_from_file_location("bench_soak", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "flags",
    [["--mix", "fax:1"], ["--faults", "power_cut"], ["--duration", "5"], ["--customers", "0"]],
)
def test_it_refuses_bad_flags_before_making_a_database(flags, monkeypatch, capsys):
    soak = _bench_soak()
    monkeypatch.setattr(soak, "_admin_connection", lambda url: pytest.fail("database touched"))

    assert soak.main(flags) == 2
    assert capsys.readouterr().err.startswith("soak: ")


def _swept_turn_and_a_later_one(conversation) -> tuple[Turn, Turn]:
    """A dead worker's turn the sweeper closed 15 s after it started, and a turn started 10 s
    after the first (while the sweeper had not yet come)."""
    start = timezone.now() - timedelta(minutes=1)
    swept = Turn.objects.create(conversation=conversation, outcome=Turn.Outcome.LOST_LOCK)
    detail = "worker gone; the sweeper put its messages back in the queue"
    end = start + timedelta(seconds=15)
    Turn.objects.filter(pk=swept.pk).update(started_at=start, finished_at=end, detail=detail)
    later = Turn.objects.create(conversation=conversation, outcome=Turn.Outcome.ANSWERED)
    Turn.objects.filter(pk=later.pk).update(
        started_at=start + timedelta(seconds=10), finished_at=end + timedelta(seconds=5)
    )
    swept.refresh_from_db()
    later.refresh_from_db()
    return swept, later


@pytest.mark.django_db
def test_it_ends_a_swept_turn_when_its_worker_was_killed():
    customer = Customer.objects.create(wa_id="5511970000002")
    swept, _ = _swept_turn_and_a_later_one(Conversation.objects.create(customer=customer))
    kill = Fault("kill -9 worker-2", swept.started_at.timestamp() + 2)
    _answered_conversation()

    report = soak_checks.check(_result(faults=[kill]))

    assert report.ok, report.text()


@pytest.mark.django_db
def test_it_fails_a_swept_turn_overlapping_the_next_without_a_kill_in_its_span():
    customer = Customer.objects.create(wa_id="5511970000002")
    swept, _ = _swept_turn_and_a_later_one(Conversation.objects.create(customer=customer))
    too_late = Fault("kill -9 worker-2", swept.started_at.timestamp() + 12)
    _answered_conversation()

    report = soak_checks.check(_result(faults=[too_late]))

    assert _failed(report) == ["no two turns of one conversation overlapped"]


@pytest.mark.django_db
def test_it_fails_a_batch_marked_answered_whose_reply_was_never_sent():
    _answered_conversation()
    Message.objects.filter(provider_id="wamid.out-1").update(provider_id=None, sent_at=None)

    report = soak_checks.check(_result(cloud_texts=[]))

    assert _failed(report) == ["every answered batch got its reply"]


@pytest.mark.django_db
def test_it_allows_a_second_crm_call_when_a_worker_died_during_the_first():
    _answered_conversation()
    now = time.time()
    calls = [
        CrmCall(now - 50, "52998224725", "ok", now - 49),
        CrmCall(now - 40, "52998224725", "ok", now - 39),
    ]
    kill = Fault("kill -9 worker-1", now - 49.5)

    report = soak_checks.check(_result(crm_calls=calls, faults=[kill]))

    assert report.ok, report.text()
