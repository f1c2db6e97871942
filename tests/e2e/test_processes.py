"""Production layout for real: `daphne supportbot.asgi:application` and `manage.py runworker
supportbot-inbound` as separate processes on this machine's PostgreSQL and Redis."""

import random
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest

from conversations.models import Message, RuntimeSettings, Turn
from tests.fakes.cloud_api import FakeCloudAPI, deliver, text_webhook
from tests.fakes.processes import ProcessSet, live_env, tune_runtime, wait_until
from tests.fakes.responses_api import FakeResponsesAPI

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONVERSATIONS = 50
WA_ID = "5511987650010"
IDLE_SECONDS = 6


@pytest.fixture
def procs(transactional_db):
    # Depends on the database fixture so the processes stop before the test database is flushed.
    with ProcessSet() as procs:
        yield procs


def _inbound():
    return Message.objects.filter(direction=Message.Direction.INBOUND)


def _all_answered(expected: int) -> bool:
    inbound = _inbound()
    return (
        inbound.count() == expected and not inbound.exclude(state=Message.State.ANSWERED).exists()
    )


def test_it_answers_through_separate_daphne_and_runworker_processes(
    procs, live_database_url, live_redis_url
):
    tune_runtime()
    with FakeCloudAPI() as cloud:
        env = live_env(live_database_url, live_redis_url, **cloud.env())
        worker = procs.runworker(env)
        web = procs.daphne(env)
        # An idle listener must outlive the channel layer's 5 s blocking read (it once did not).
        time.sleep(IDLE_SECONDS)

        response = deliver(
            web.url, text_webhook(wa_id=WA_ID, wamid="wamid.e2e-1", text="Oi, tudo bem?")
        )

        assert response.status_code == 200
        texts = cloud.wait_for_texts(lambda texts: len(texts) >= 1)
        wait_until(lambda: _all_answered(1), what="the message answered")
        reply = Message.objects.get(direction=Message.Direction.OUTBOUND)
        assert [(text.to, text.body, text.wamid) for text in texts] == [
            (WA_ID, reply.text, reply.provider_id)
        ]
        assert reply.kind == Message.Kind.REPLY
        assert _inbound().get().turn_id == reply.turn_id
        # SIGTERM: the worker stops taking wakes, lets running turns end, exits cleanly.
        assert worker.terminate() == 0
        assert "worker stopped" in worker.output()


def _echo(body: dict) -> str:
    """The reply names the messages it answers (the last user items of the input)."""
    return "recebi: " + " | ".join(
        str(item.get("content")) for item in body.get("input", []) if item.get("role") == "user"
    )


def _send_bursts(url: str, wa_id: str, rng: random.Random) -> list[str]:
    """Three bursts of 1-3 messages; a later one lands while a turn runs or after its reply."""
    wamids = []
    for burst in range(3):
        for index in range(rng.randint(1, 3)):
            wamid = f"wamid.load-{wa_id}-{burst}-{index}"
            response = deliver(
                url, text_webhook(wa_id=wa_id, wamid=wamid, text=f"msg {burst}.{index}")
            )
            assert response.status_code == 200, response.text
            wamids.append(wamid)
            time.sleep(rng.uniform(0, 0.1))
        time.sleep(rng.uniform(0.2, 2.0))
    return wamids


def test_it_runs_one_turn_at_a_time_and_answers_each_message_once_across_two_workers(
    procs, live_database_url, live_redis_url
):
    # Supersede at most once per turn, so later bursts also make second and third turns.
    tune_runtime(debounce_quiet_ms=300, debounce_max_wait_ms=1000, supersede_cap=1)
    rng = random.Random(20261125)
    wa_ids = [f"55119900{n:05d}" for n in range(CONVERSATIONS)]
    seeds = [rng.random() for _ in wa_ids]
    # A model that takes a moment, so second bursts land while first turns run.
    with FakeCloudAPI() as cloud, FakeResponsesAPI(reply=_echo, delay_s=0.3) as llm:
        env = live_env(
            live_database_url,
            live_redis_url,
            **cloud.env(),
            OPENAI_API_KEY="e2e-key",
            OPENAI_BASE_URL=llm.url,
            # Every thread holds a PostgreSQL connection; the server allows 100 for all of us.
            WORKER_THREADS="8",
        )
        workers = [procs.runworker(env, name=f"worker-{n}") for n in (1, 2)]
        web = procs.daphne(env)

        with ThreadPoolExecutor(max_workers=CONVERSATIONS) as pool:
            sent = list(
                pool.map(
                    lambda args: _send_bursts(web.url, args[0], random.Random(args[1])),
                    zip(wa_ids, seeds, strict=True),
                )
            )

        total = sum(len(wamids) for wamids in sent)
        wait_until(lambda: _all_answered(total), timeout=60, what=f"all {total} messages answered")
        wait_until(
            lambda: not Turn.objects.filter(finished_at=None).exists(), what="every turn finished"
        )
    # Both workers took turns (the engine logs each one), so they really competed.
    for worker in workers:
        assert re.search(r"turn \d+ answered", worker.output()), worker.name
    texts = cloud.texts()
    replies = list(
        Message.objects.filter(direction=Message.Direction.OUTBOUND).select_related(
            "conversation__customer"
        )
    )
    assert sorted(text.wamid for text in texts) == sorted(reply.provider_id for reply in replies)
    assert {reply.kind for reply in replies} == {Message.Kind.REPLY}

    turns_by_conversation = defaultdict(list)
    for turn in Turn.objects.order_by("started_at", "pk"):
        turns_by_conversation[turn.conversation_id].append(turn)
    assert len(turns_by_conversation) == CONVERSATIONS
    for turns in turns_by_conversation.values():
        for earlier, later in pairwise(turns):
            assert earlier.finished_at <= later.started_at, (earlier.pk, later.pk)

    replies_by_turn = defaultdict(list)
    for reply in replies:
        replies_by_turn[reply.turn_id].append(reply)
    answering_turns = set(_inbound().values_list("turn_id", flat=True))
    assert None not in answering_turns
    for turn in Turn.objects.filter(pk__in=answering_turns):
        assert turn.outcome == Turn.Outcome.ANSWERED
        assert len(replies_by_turn[turn.pk]) == 1, turn.pk
    assert set(replies_by_turn) == answering_turns
    to_by_wamid = {text.wamid: text.to for text in texts}
    for reply in replies:
        assert to_by_wamid[reply.provider_id] == reply.conversation.customer.wa_id


def test_it_uses_a_runtime_setting_saved_in_the_admin_within_5_seconds_without_restart(
    procs, live_database_url, live_redis_url
):
    tune_runtime(llm_model="modelo-antigo")
    with FakeCloudAPI() as cloud, FakeResponsesAPI(reply="Certo!") as llm:
        env = live_env(
            live_database_url,
            live_redis_url,
            **cloud.env(),
            OPENAI_API_KEY="e2e-key",
            OPENAI_BASE_URL=llm.url,
        )
        procs.runworker(env)
        web = procs.daphne(env)
        assert deliver(web.url, text_webhook(wa_id=WA_ID, wamid="wamid.tune-1", text="Oi")).ok
        cloud.wait_for_texts(lambda texts: len(texts) >= 1)
        assert [call["model"] for call in llm.calls] == ["modelo-antigo"]

        RuntimeSettings.objects.filter(pk=1).update(llm_model="modelo-novo")
        time.sleep(5)  # the promise: every worker sees a saved change within 5 s
        assert deliver(web.url, text_webhook(wa_id=WA_ID, wamid="wamid.tune-2", text="E aí?")).ok
        cloud.wait_for_texts(lambda texts: len(texts) >= 2)

    assert [call["model"] for call in llm.calls] == ["modelo-antigo", "modelo-novo"]
