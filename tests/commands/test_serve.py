"""`manage.py serve`: web server and inbound worker in one process, started for real."""

import signal
import socket
import sys

import pytest
from django.core.management import CommandError, call_command

from conversations.models import Message
from tests.fakes.cloud_api import FakeCloudAPI, deliver, text_webhook
from tests.fakes.processes import (
    ProcessSet,
    live_env,
    process_env,
    sqlite_copy,
    tune_runtime,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def procs():
    with ProcessSet() as procs:
        yield procs


@pytest.fixture
def live_procs(transactional_db):
    # Depends on the database fixture so the processes stop before the test database is flushed.
    with ProcessSet() as procs:
        yield procs


@pytest.fixture
def sqlite_env(migrated_sqlite_file, tmp_path):
    """Embedded mode (no REDIS_URL) on a migrated SQLite file of its own, not the developer's."""
    return process_env(DATABASE_URL=sqlite_copy(migrated_sqlite_file, tmp_path))


def _answered(wamid: str) -> Message | None:
    message = Message.objects.filter(provider_id=wamid).first()
    return message if message and message.state == Message.State.ANSWERED else None


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_it_answers_a_signed_webhook_with_postgresql_and_redis(
    live_procs, live_database_url, live_redis_url
):
    tune_runtime()
    with FakeCloudAPI() as cloud:
        web = live_procs.serve(live_env(live_database_url, live_redis_url, **cloud.env()))

        response = deliver(
            web.url, text_webhook(wa_id="5511987650001", wamid="wamid.serve-1", text="Oi")
        )

        assert response.status_code == 200
        texts = cloud.wait_for_texts(lambda texts: len(texts) >= 1)
        inbound = wait_until(lambda: _answered("wamid.serve-1"), what="inbound answered")
        reply = Message.objects.get(direction=Message.Direction.OUTBOUND, kind=Message.Kind.REPLY)
        assert [(text.to, text.wamid) for text in texts] == [("5511987650001", reply.provider_id)]
        assert texts[0].body == reply.text
        assert inbound.turn_id == reply.turn_id
        assert web.terminate() == 0
        assert "supportbot stopped" in web.output()


def test_it_answers_in_embedded_mode_and_stops_on_sigterm(procs, sqlite_env):
    with FakeCloudAPI() as cloud:
        web = procs.serve({**sqlite_env, **cloud.env()})
        assert "embedded mode" in web.output()

        response = deliver(
            web.url, text_webhook(wa_id="5511987650002", wamid="wamid.serve-2", text="Oi")
        )

        assert response.status_code == 200
        texts = cloud.wait_for_texts(lambda texts: len(texts) >= 1)
        assert [text.to for text in texts] == ["5511987650002"]
        assert web.terminate() == 0
        assert "supportbot stopped" in web.output()


def test_it_stops_cleanly_on_sigint(procs, sqlite_env):
    # As when the suite runs in the background, where SIGINT is ignored and children inherit it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        web = procs.serve(sqlite_env)
    finally:
        signal.signal(signal.SIGINT, previous)

    web.popen.send_signal(signal.SIGINT)

    assert web.popen.wait(15) == 0
    assert "supportbot stopped" in web.output()


def test_it_prints_the_url_it_listens_on(procs, sqlite_env):
    web = procs.serve(sqlite_env)

    assert web.url.startswith("http://127.0.0.1:")
    assert f"supportbot is running at {web.url}/" in web.output()
    assert f"admin:     {web.url}/admin/" in web.output()
    assert "simulator: " not in web.output()


def test_it_prints_the_simulator_url_with_debug_on(procs, sqlite_env):
    web = procs.serve({**sqlite_env, "DJANGO_DEBUG": "true"})

    assert f"simulator: {web.url}/simulator/" in web.output()


def test_it_fails_when_the_port_is_taken(procs, sqlite_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = procs.start(
            "serve", [sys.executable, "manage.py", "serve", "--port", str(port)], sqlite_env
        )

        assert web.popen.wait(30) != 0
    assert f"could not listen on 127.0.0.1:{port}" in web.output()


@pytest.mark.parametrize("port", [-1, 65536])
def test_it_rejects_a_port_out_of_range(port):
    with pytest.raises(CommandError, match="--port must be between 0 and 65535"):
        call_command("serve", port=port)
