import asyncio
import threading
import time

import pytest
from django.db import OperationalError

from conversations import defaults, runtime
from conversations.models import RuntimeSettings
from conversations.runtime import (
    RuntimeSnapshot,
    get_or_create_settings_row,
    get_runtime,
    reset_runtime_cache,
)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _fresh_cache():
    reset_runtime_cache()
    yield
    reset_runtime_cache()


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(runtime, "_clock", fake)
    return fake


@pytest.mark.django_db
def test_it_serves_the_issue_defaults_when_no_row_exists(settings):
    settings.OPENAI_MODEL = "model-from-env"
    snapshot = get_runtime()
    assert snapshot.crm_cache_ttl_seconds == 300
    assert snapshot.crm_negative_ttl_seconds == 60
    assert snapshot.crm_stale_ttl_seconds == 3600
    assert snapshot.crm_timeout_seconds == 12
    assert snapshot.lock_ttl_seconds == 120
    assert snapshot.lock_wait_timeout_seconds == 60
    assert (snapshot.backoff_base_ms, snapshot.backoff_cap_ms) == (100, 2000)
    assert (snapshot.debounce_quiet_ms, snapshot.debounce_max_wait_ms) == (2000, 8000)
    assert snapshot.supersede_enabled is True
    assert snapshot.supersede_cap == 2
    assert snapshot.llm_model == "model-from-env"
    assert snapshot.llm_timeout_seconds == 60
    assert snapshot.history_window_messages == 30
    assert snapshot.assistant_instructions == defaults.ASSISTANT_INSTRUCTIONS
    assert snapshot.fallback_reply == defaults.FALLBACK_REPLY
    assert "{message}" in snapshot.outage_notice_template
    assert snapshot.updated_at is None
    assert not RuntimeSettings.objects.exists()  # reading never writes


def test_it_has_a_field_for_every_runtime_setting():
    model_fields = {f.name for f in RuntimeSettings._meta.concrete_fields} - {"id"}
    snapshot_fields = {f for f in RuntimeSnapshot.__dataclass_fields__}
    assert snapshot_fields == model_fields


def test_it_is_immutable():
    with pytest.raises(AttributeError):
        RuntimeSnapshot().lock_ttl_seconds = 1


def test_it_has_portuguese_default_texts_that_are_not_about_a_previous_message():
    assert "atendente" in defaults.FALLBACK_REPLY
    assert "mensagem anterior" not in defaults.FALLBACK_REPLY
    assert "provedor de internet" in defaults.ASSISTANT_INSTRUCTIONS
    assert defaults.OUTAGE_NOTICE_TEMPLATE.format(message="Rompimento de fibra.")


@pytest.mark.django_db
def test_it_creates_the_row_once_with_the_defaults():
    row = get_or_create_settings_row()
    assert get_or_create_settings_row().pk == row.pk
    assert RuntimeSettings.objects.count() == 1
    assert row.fallback_reply == defaults.FALLBACK_REPLY
    assert row.assistant_instructions == defaults.ASSISTANT_INSTRUCTIONS
    assert row.lock_ttl_seconds == 120


@pytest.mark.django_db
def test_it_reads_the_saved_row(settings):
    settings.OPENAI_MODEL = "model-from-env"
    row = get_or_create_settings_row()
    row.lock_ttl_seconds = 90
    row.supersede_enabled = False
    row.llm_model = "gpt-test"
    row.save()
    snapshot = get_runtime()
    assert snapshot.lock_ttl_seconds == 90
    assert snapshot.supersede_enabled is False
    assert snapshot.llm_model == "gpt-test"
    assert snapshot.updated_at == row.updated_at


@pytest.mark.django_db
def test_it_uses_the_defaults_for_blank_texts(settings):
    settings.OPENAI_MODEL = "model-from-env"
    row = get_or_create_settings_row()
    row.llm_model = ""
    row.assistant_instructions = "  "
    row.fallback_reply = ""
    row.outage_notice_template = ""
    row.save()
    snapshot = get_runtime()
    assert snapshot.llm_model == "model-from-env"
    assert snapshot.assistant_instructions == defaults.ASSISTANT_INSTRUCTIONS
    assert snapshot.fallback_reply == defaults.FALLBACK_REPLY
    assert snapshot.outage_notice_template == defaults.OUTAGE_NOTICE_TEMPLATE


@pytest.mark.django_db
def test_it_does_not_query_within_the_reload_window(clock, django_assert_num_queries):
    get_or_create_settings_row()
    with django_assert_num_queries(1):
        first = get_runtime()
    with django_assert_num_queries(0):
        for _ in range(100):
            clock.advance(0.019)  # 1.9 s in all
            assert get_runtime() is first


@pytest.mark.django_db
def test_it_reloads_after_the_window(clock, django_assert_num_queries):
    get_or_create_settings_row()
    get_runtime()
    clock.advance(runtime.RELOAD_INTERVAL_S)
    with django_assert_num_queries(1):
        get_runtime()


@pytest.mark.django_db
def test_it_shows_a_saved_change_to_a_running_worker_within_5_seconds(clock):
    row = get_or_create_settings_row()
    assert get_runtime().debounce_quiet_ms == 2000  # the worker has a snapshot
    RuntimeSettings.objects.filter(pk=row.pk).update(debounce_quiet_ms=500)  # the admin saves
    seen_after = None
    for tenth in range(1, 51):
        clock.advance(0.1)
        if get_runtime().debounce_quiet_ms == 500:
            seen_after = tenth / 10
            break
    assert seen_after is not None
    assert seen_after <= runtime.RELOAD_INTERVAL_S + 0.1


@pytest.mark.django_db
def test_it_keeps_the_last_snapshot_when_the_database_fails(clock, monkeypatch, caplog):
    row = get_or_create_settings_row()
    row.lock_ttl_seconds = 77
    row.save()
    assert get_runtime().lock_ttl_seconds == 77

    calls = []

    def broken():
        calls.append(1)
        raise OperationalError("connection refused")

    monkeypatch.setattr(runtime, "_load", broken)
    clock.advance(5)
    assert get_runtime().lock_ttl_seconds == 77
    assert "keeping the previous values" in caplog.text
    assert get_runtime().lock_ttl_seconds == 77
    assert len(calls) == 1  # a dead database costs one attempt per window, not one per call
    clock.advance(5)
    get_runtime()
    assert len(calls) == 2


def test_it_serves_the_defaults_when_the_database_fails_at_start(monkeypatch, caplog):
    def broken():
        raise OperationalError("no such table")

    monkeypatch.setattr(runtime, "_load", broken)
    assert get_runtime() == RuntimeSnapshot()
    assert "keeping the default values" in caplog.text


def test_it_loads_once_when_many_threads_ask_at_the_same_time(monkeypatch):
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.05)
        return RuntimeSnapshot(lock_ttl_seconds=99)

    monkeypatch.setattr(runtime, "_load", slow_load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_runtime())) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert [r.lock_ttl_seconds for r in results] == [99] * 20


@pytest.mark.django_db(transaction=True)
async def test_it_works_from_inside_an_event_loop(clock):
    # The ORM refuses to run on the loop's thread: the first call reads the row in a helper thread.
    row = await asyncio.to_thread(get_or_create_settings_row)
    row.supersede_cap = 5
    await asyncio.to_thread(row.save)
    assert get_runtime().supersede_cap == 5


@pytest.mark.django_db(transaction=True)
async def test_it_refreshes_in_the_background_inside_an_event_loop(clock):
    row = await asyncio.to_thread(get_or_create_settings_row)
    assert get_runtime().supersede_cap == 2
    row.supersede_cap = 7
    await asyncio.to_thread(row.save)
    clock.advance(runtime.RELOAD_INTERVAL_S)
    assert get_runtime().supersede_cap == 2  # served at once, the refresh runs in a thread
    for _ in range(100):
        if get_runtime().supersede_cap == 7:
            break
        await asyncio.sleep(0.01)
    assert get_runtime().supersede_cap == 7


@pytest.fixture(params=["embedded", pytest.param("postgresql", marks=pytest.mark.live)])
def database(request):
    if request.param == "postgresql":
        request.getfixturevalue("live_database_url")
        from django.db import connection

        assert connection.vendor == "postgresql"
    return request.param


@pytest.mark.django_db(transaction=True)
def test_it_shows_a_change_saved_elsewhere_to_a_worker_thread_within_5_seconds(database):
    row = get_or_create_settings_row()
    seen = threading.Event()
    ready = threading.Event()
    stop = threading.Event()

    def worker():  # polls like a worker handling messages, on its own connection
        from django.db import connections

        try:
            assert get_runtime().history_window_messages == 30
            ready.set()
            while not stop.is_set():
                if get_runtime().history_window_messages == 12:
                    seen.set()
                    return
                time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert ready.wait(5)
        RuntimeSettings.objects.filter(pk=row.pk).update(history_window_messages=12)
        assert seen.wait(5), "the running worker did not see the saved change within 5 s"
    finally:
        stop.set()
        thread.join()
