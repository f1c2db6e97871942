"""The backoff schedule staff tune (base doubling to a cap, within a wait timeout), shared by
the conversation lock and the CRM single-flight wait."""

import logging
import time
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)


def backoff_delays(base_ms: int, cap_ms: int) -> Iterator[float]:
    """Seconds to sleep before each retry: base, 2*base, 4*base ... capped (100, 200, ..., 2000, 2000)."""
    delay_ms = base_ms
    while True:
        yield min(delay_ms, cap_ms) / 1000
        delay_ms = min(delay_ms * 2, cap_ms)


def wait_with_backoff(
    attempt: Callable[[], bool],
    *,
    base_ms: int,
    cap_ms: int,
    timeout_s: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, int, float]:
    """Call `attempt` until it returns True or `timeout_s` passes, sleeping on the schedule.

    Returns (succeeded, attempts, waited seconds). Logs after a wait, every 10th attempt and on
    timeout; `what` names the thing waited for and must carry no personal data.
    """
    started = clock()
    for attempts, delay in enumerate(backoff_delays(base_ms, cap_ms), start=1):
        if attempt():
            waited = clock() - started
            if attempts > 1:
                logger.info("%s: got it after %d attempts, %.0f ms", what, attempts, waited * 1000)
            return True, attempts, waited
        if attempts % 10 == 0:
            logger.info("%s: still waiting, attempt %d", what, attempts)
        remaining = timeout_s - (clock() - started)
        if remaining <= 0:
            waited = clock() - started
            logger.warning("%s: gave up after %d attempts, %.0f ms", what, attempts, waited * 1000)
            return False, attempts, waited
        sleep(min(delay, remaining))
    raise AssertionError("unreachable")  # pragma: no cover
