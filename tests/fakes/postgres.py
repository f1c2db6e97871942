"""Helpers for the live tests that make PostgreSQL sessions race: which backend runs a thread's
queries, and whether it waits on a lock."""

import time

from django.db import connection


def backend_pid() -> int:
    """The PostgreSQL backend of this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def pid_of(name: str, pids: dict[str, int], timeout_s: float = 10) -> int:
    """The backend pid a thread put in `pids` under `name` once it started (waits for it)."""
    deadline = time.monotonic() + timeout_s
    while name not in pids and time.monotonic() < deadline:
        time.sleep(0.005)
    assert name in pids, f"the {name}'s thread did not start"
    return pids[name]


def waits_on_a_lock(pid: int, timeout_s: float = 10) -> bool:
    """Whether that backend waits on a lock within timeout_s (polled from this thread)."""
    deadline = time.monotonic() + timeout_s
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return True
            time.sleep(0.01)
    return False
