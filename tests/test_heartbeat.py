"""Workers' heartbeats in one Redis sorted set."""

import asyncio

import pytest

from conversations import heartbeat


def test_it_counts_the_workers_that_beat_lately():
    heartbeat.beat("host-a:1", now=1000.0)
    heartbeat.beat("host-b:2", now=1009.0)
    alive = dict(heartbeat.alive(now=1010.0))
    assert alive == {"host-a:1": 10.0, "host-b:2": 1.0}


def test_it_forgets_a_worker_whose_beats_stopped():
    heartbeat.beat("host-a:1", now=1000.0)
    heartbeat.beat("host-b:2", now=1014.0)
    assert [w for w, _ in heartbeat.alive(now=1016.0)] == ["host-b:2"]


def test_a_worker_that_stops_leaves_at_once():
    heartbeat.beat("host-a:1")
    heartbeat.forget("host-a:1")
    assert heartbeat.alive() == []


@pytest.mark.django_db
async def test_beat_forever_beats_at_start_and_leaves_when_cancelled():
    task = asyncio.ensure_future(heartbeat.beat_forever())
    for _ in range(200):
        if heartbeat.alive():
            break
        await asyncio.sleep(0.01)
    assert [w for w, _ in heartbeat.alive()] == [heartbeat.worker_id()]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert heartbeat.alive() == []
