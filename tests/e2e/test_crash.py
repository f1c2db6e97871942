"""kill -9 of a worker process in the middle of a turn, on this machine's PostgreSQL and Redis:
once its lock has expired, a restarted worker's sweeper takes the claimed message again and the
customer gets exactly one reply."""

import time

import pytest

from conversations.models import Message, Turn
from tests.fakes.cloud_api import FakeCloudAPI, deliver, text_webhook
from tests.fakes.processes import ProcessSet, live_env, tune_runtime, wait_until
from tests.fakes.responses_api import FakeResponsesAPI

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WA_ID = "5511987650020"
WAMID = "wamid.crash-1"
REPLY = "Sua conexão foi restabelecida."


@pytest.fixture
def procs(transactional_db):
    # Depends on the database fixture so the processes stop before the test database is flushed.
    with ProcessSet() as procs:
        yield procs


def _inbound() -> Message:
    return Message.objects.get(provider_id=WAMID)


def test_it_sends_the_reply_exactly_once_after_a_worker_is_killed_mid_turn(
    procs, live_database_url, live_redis_url
):
    # A short lock TTL so the dead worker's lock expires in seconds (the admin allows 10 s+).
    tune_runtime(lock_ttl_seconds=3, llm_timeout_seconds=60)
    with FakeCloudAPI() as cloud, FakeResponsesAPI(reply=REPLY, hold=True) as llm:
        env = live_env(
            live_database_url,
            live_redis_url,
            **cloud.env(),
            OPENAI_API_KEY="e2e-key",
            OPENAI_BASE_URL=llm.url,
        )
        doomed = procs.runworker(env, name="worker-killed")
        web = procs.daphne(env)

        assert deliver(web.url, text_webhook(wa_id=WA_ID, wamid=WAMID, text="Sem internet")).ok
        # The turn is now waiting for the model: the message is claimed, nothing sent yet.
        assert llm.wait_for_calls(1, timeout_s=20)
        assert _inbound().state == Message.State.PROCESSING
        doomed.kill()
        llm.release()
        assert doomed.popen.returncode == -9
        assert cloud.texts() == []

        procs.runworker(env, name="worker-restarted")
        texts = cloud.wait_for_texts(lambda texts: len(texts) >= 1, timeout=30)
        wait_until(lambda: _inbound().state == Message.State.ANSWERED, what="the message answered")
        # Let a second sweep or a duplicate send show itself before counting.
        time.sleep(1)

    texts = cloud.texts()
    assert [(text.to, text.body) for text in texts] == [(WA_ID, REPLY)]
    reply = Message.objects.get(direction=Message.Direction.OUTBOUND)
    assert reply.provider_id == texts[0].wamid
    assert _inbound().turn_id == reply.turn_id
    turns = list(Turn.objects.order_by("started_at"))
    assert [turn.outcome for turn in turns] == [Turn.Outcome.LOST_LOCK, Turn.Outcome.ANSWERED]
    assert turns[0].finished_at <= turns[1].started_at
    assert len(llm.calls) == 2
