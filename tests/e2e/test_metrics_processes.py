"""`/metrics` on a real daphne covers every process: two `runworker` processes and the web
process add to the same Redis, and one scrape of daphne shows all of it (issue 14)."""

import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conversations.models import Message
from tests.fakes.cloud_api import FakeCloudAPI, deliver, text_webhook
from tests.fakes.processes import ProcessSet, live_env, tune_runtime, wait_until

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = "e2e-metrics-token"
CONVERSATIONS = 12
TURN_LINE = re.compile(r"conversation \d+: turn \d+ answered")


@pytest.fixture
def procs(transactional_db):
    with ProcessSet() as procs:
        yield procs


def scrape(url: str) -> dict[tuple, float]:
    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_one_scrape_of_daphne_shows_both_workers_and_every_turn(
    procs, live_database_url, live_redis_url
):
    tune_runtime()
    with FakeCloudAPI() as cloud:
        env = live_env(live_database_url, live_redis_url, **cloud.env(), METRICS_TOKEN=TOKEN)
        workers = [procs.runworker(env, name=f"worker-{n}") for n in (1, 2)]
        web = procs.daphne(env)
        assert requests.get(f"{web.url}/metrics", timeout=10).status_code == 401
        wait_until(
            lambda: scrape(web.url)[("supportbot_workers_alive", ())] == 2,
            what="both workers' heartbeats",
        )

        for n in range(CONVERSATIONS):
            wa_id = f"55119800{n:05d}"
            payload = text_webhook(wa_id=wa_id, wamid=f"wamid.metrics-{n}", text="Oi")
            assert deliver(web.url, payload).status_code == 200

        wait_until(
            lambda: (
                Message.objects.filter(
                    direction=Message.Direction.OUTBOUND, delivery_status="sent"
                ).count()
                == CONVERSATIONS
            ),
            timeout=60,
            what="every conversation answered",
        )

        def counted():
            samples = scrape(web.url)
            return (
                samples.get(("supportbot_turns_total", (("outcome", "answered"),))) == CONVERSATIONS
                and samples.get(("supportbot_replies_sent_total", (("kind", "assistant"),)))
                == CONVERSATIONS
                and samples
            )

        samples = wait_until(counted, timeout=15, what="the workers' counts in the scrape")
        assert samples[("supportbot_webhook_requests_total", (("status", "200"),))] == (
            CONVERSATIONS
        )
        assert samples[("supportbot_messages_received_total", (("type", "text"),))] == (
            CONVERSATIONS
        )
        assert samples[("supportbot_turn_duration_seconds_count", ())] == CONVERSATIONS
        assert samples[("supportbot_workers_alive", ())] == 2
        # The turns were counted by the workers that ran them (daphne runs none).
        logged = [len(TURN_LINE.findall(worker.output())) for worker in workers]
        assert sum(logged) == CONVERSATIONS
        assert TURN_LINE.search(web.output()) is None
        for worker in workers:
            assert worker.terminate() == 0
        wait_until(
            lambda: scrape(web.url)[("supportbot_workers_alive", ())] == 0,
            what="stopped workers leaving the count",
        )
