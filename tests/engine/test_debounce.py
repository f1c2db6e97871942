"""conversations.engine.debounce: a turn starts once the customer has been quiet for the window, never
later than the max wait after their oldest pending message."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from conversations.engine import peeks
from conversations.engine.debounce import quiet_wait_s, wait_for_quiet
from tests.fakes.engine import astore, conversation, scaled  # noqa: F401 (fixture)

RUNTIME = SimpleNamespace(debounce_quiet_ms=2000, debounce_max_wait_ms=8000)


def peek(oldest_s_ago: float | None, newest_s_ago: float | None = None) -> peeks.Peek:
    if oldest_s_ago is None:
        return peeks.Peek(None)
    now = timezone.now()
    newest_s_ago = oldest_s_ago if newest_s_ago is None else newest_s_ago
    return peeks.Peek(
        None, now - timedelta(seconds=oldest_s_ago), now - timedelta(seconds=newest_s_ago)
    )


def test_it_has_nothing_to_wait_for_when_nothing_is_pending():
    assert quiet_wait_s(peek(None), RUNTIME) is None


def test_it_waits_out_the_quiet_window_after_the_newest_message():
    assert quiet_wait_s(peek(3.0, 0.5), RUNTIME) == pytest.approx(1.5, abs=0.05)


def test_it_never_waits_past_the_max_wait_after_the_oldest_message():
    # Still typing (newest 0.1 s ago), but the oldest has waited 7.5 s of the 8 s max.
    assert quiet_wait_s(peek(7.5, 0.1), RUNTIME) == pytest.approx(0.5, abs=0.05)


def test_it_starts_at_once_when_the_customer_is_already_quiet():
    assert quiet_wait_s(peek(5.0, 2.5), RUNTIME) <= 0


@pytest.mark.django_db(transaction=True)
async def test_wait_for_quiet_returns_the_look_once_the_window_has_passed(scaled):
    c = await conversation()
    message = await astore(c.pk, "oi")
    runtime = SimpleNamespace(debounce_quiet_ms=50, debounce_max_wait_ms=500)

    look = await wait_for_quiet(c.pk, runtime)

    assert look.oldest == message.created_at
    assert (timezone.now() - message.created_at).total_seconds() >= 0.05


@pytest.mark.django_db(transaction=True)
async def test_wait_for_quiet_returns_none_when_nothing_is_pending(scaled):
    c = await conversation()
    assert await wait_for_quiet(c.pk, RUNTIME) is None
