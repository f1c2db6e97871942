"""supportbot.redis_config: one Redis, Redis through Sentinel, or the embedded fakeredis."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.fakes.ports import free_port
from tests.fakes.processes import ROOT
from tests.supportbot.test_settings import load_settings

SENTINELS = "10.0.0.1:26379,sentinel-b:26380"


def test_it_configures_cache_locks_and_channel_layer_through_sentinel(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        DJANGO_SECRET_KEY="s3cret",
        REDIS_SENTINELS=SENTINELS,
        REDIS_SENTINEL_MASTER="supportbot",
        REDIS_DB="3",
        REDIS_PASSWORD="pw",
    )
    assert loaded["EMBEDDED"] is False
    cache = loaded["CACHES"]["default"]
    assert cache["LOCATION"] == "redis://supportbot/3"
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert cache["OPTIONS"]["SENTINELS"] == [("10.0.0.1", 26379), ("sentinel-b", 26380)]
    assert cache["OPTIONS"]["PASSWORD"] == "pw"
    (host,) = loaded["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]
    assert host["sentinels"] == [("10.0.0.1", 26379), ("sentinel-b", 26380)]
    assert host["master_name"] == "supportbot"
    assert host["db"] == 3
    assert host["password"] == "pw"


def test_it_keeps_one_redis_on_redis_url(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_SECRET_KEY="s", REDIS_URL="redis://cache:6379/2")
    cache = loaded["CACHES"]["default"]
    assert cache["LOCATION"] == "redis://cache:6379/2"
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.DefaultClient"
    assert "CONNECTION_FACTORY" not in cache["OPTIONS"]
    (host,) = loaded["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]
    assert host == {"address": "redis://cache:6379/2", "socket_timeout": 30}


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"REDIS_SENTINELS": "sentinel-a", "REDIS_SENTINEL_MASTER": "m"}, "host:port"),
        ({"REDIS_SENTINELS": "a:port", "REDIS_SENTINEL_MASTER": "m"}, "host:port"),
        ({"REDIS_SENTINELS": "a:70000", "REDIS_SENTINEL_MASTER": "m"}, "host:port"),
        ({"REDIS_SENTINELS": ":26379", "REDIS_SENTINEL_MASTER": "m"}, "host:port"),
        ({"REDIS_SENTINELS": SENTINELS}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "needs REDIS_SENTINELS"),
        (
            {"REDIS_SENTINELS": SENTINELS, "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://r"},
            "not both",
        ),
        (
            {"REDIS_SENTINELS": SENTINELS, "REDIS_SENTINEL_MASTER": "m", "REDIS_DB": "16"},
            "REDIS_DB",
        ),
    ],
)
def test_it_refuses_a_bad_sentinel_configuration(monkeypatch, environment, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load_settings(monkeypatch, DJANGO_SECRET_KEY="s", **environment)


# Run in a process of its own: settings are read once per process.
_CHECK = """
import asyncio, json, django
django.setup()
from django.core.cache import cache
from channels.layers import get_channel_layer
from conversations.engine.locks import ConversationLock

cache.set("sentinel-check", 42, timeout=30)
lock = ConversationLock(987654, ttl_s=5)
acquired = lock.try_acquire()
held_elsewhere = ConversationLock(987654, ttl_s=5).try_acquire()
lock.release()

async def channel_round_trip():
    layer = get_channel_layer()
    await layer.send("sentinel-check", {"type": "check", "n": 7})
    message = await layer.receive("sentinel-check")
    await layer.flush()
    return message["n"]

print(json.dumps({
    "cache": cache.get("sentinel-check"),
    "lock": acquired,
    "lock_held_elsewhere": held_elsewhere,
    "channel": asyncio.run(channel_round_trip()),
}))
cache.delete("sentinel-check")
"""


@pytest.mark.live
def test_it_reaches_redis_through_a_real_sentinel(live_redis_url, tmp_path):
    from urllib.parse import urlparse

    master = urlparse(live_redis_url)
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor supportbot-test {master.hostname} {master.port or 6379} 1\n"
    )
    sentinel = subprocess.Popen(
        ["redis-server", str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in {"REDIS_URL", "DATABASE_URL"}
        }
        environment.update(
            REDIS_SENTINELS=f"127.0.0.1:{port}",
            REDIS_SENTINEL_MASTER="supportbot-test",
            REDIS_DB=(urlparse(live_redis_url).path.strip("/") or "0"),
            DJANGO_SECRET_KEY="live-tests-only",
            DJANGO_SETTINGS_MODULE="supportbot.settings",
        )
        done = subprocess.run(
            [sys.executable, "-c", _CHECK],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.splitlines()[-1]) == {
            "cache": 42,
            "lock": True,
            "lock_held_elsewhere": False,
            "channel": 7,
        }
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
