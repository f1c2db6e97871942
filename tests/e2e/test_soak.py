"""The soak in 60 seconds (bench/soak.py runs it for 5 minutes): 2 daphne and 3 runworker
processes on this run's PostgreSQL database and a redis-server of the test's own, 40 customers
(some asking for a person, some sending voice notes: the default mix), workers killed with kill -9 every 15 s, one Redis restart, a CRM outage, a web process killed,
LLM 500s; then every invariant of tests/fakes/soak_checks.py must hold."""

import shutil
import sys

import pytest
from django.db import connection

from conversations.models import Conversation, Message
from tests.conftest import unavailable
from tests.fakes import soak_checks
from tests.fakes.processes import database_url_named
from tests.fakes.soak_run import SoakPlan, run_soak

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLAN = SoakPlan(
    duration_s=45,
    customers=40,
    faults=("worker_kills", "redis_restart", "crm_outage", "web_restart"),
    kill_every_s=15,
    crm_outage_s=4,
    return_after_s=(10.0, 25.0),
    drain_timeout_s=90,
)


@pytest.fixture
def redis_server_binary():
    """The soak restarts a redis-server of its own (never the shared one): it needs the binary."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed: the soak starts and restarts its own")


def test_it_keeps_every_promise_while_workers_die_and_redis_restarts(
    live_database_url, redis_server_binary, transactional_db
):
    database_url = database_url_named(live_database_url, connection.settings_dict["NAME"])

    result = run_soak(PLAN, database_url, say=lambda line: sys.stderr.write(line + "\n"))

    report = soak_checks.check(result)
    names = [fault.name for fault in result.faults]
    # The faults really happened and the platform really answered: the checks are not vacuous.
    assert sum(name.startswith("kill -9 worker") for name in names) >= 2, names
    assert sum(name.startswith("redis restart") for name in names) == 1, names
    assert "kill -9 web-1" in names
    assert len(result.cloud_texts) >= PLAN.customers, report.text()
    tool_handoffs = Conversation.objects.filter(handoff_source=Conversation.HandoffSource.TOOL)
    assert tool_handoffs.exists(), report.text()
    assert Message.objects.filter(type="audio").exclude(transcript="").exists(), report.text()
    assert report.ok, report.text() + "\nprocess logs:\n" + "\n".join(result.logs.values())
    result.clean_logs()
