"""After Redis fails, leave it alone for a few seconds.

A Redis that hangs costs a socket timeout per command; without this, one lookup could spend
several of them (cache, lock, breaker) on top of the CRM timeout. With it, the CRM gateway pays
one timeout, then goes straight to the CRM (and the in-process breaker) until RETRY_AFTER_S
has passed.
"""

import logging
import time

from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0
_down_until = 0.0


def available() -> bool:
    return time.monotonic() >= _down_until


def mark_down(exc: BaseException) -> None:
    global _down_until
    if available():
        logger.warning(
            "CRM gateway: Redis failed (%s); going without it for %.0f s",
            type(exc).__name__,
            RETRY_AFTER_S,
        )
    _down_until = time.monotonic() + RETRY_AFTER_S


def reset() -> None:
    global _down_until
    _down_until = 0.0


@receiver(setting_changed)
def _cache_changed(setting, **kwargs):
    if setting == "CACHES":
        reset()  # a new cache configuration (tests) deserves a fresh try
