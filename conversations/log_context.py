"""The ids a log line carries (conversation, turn, request), from context variables.

The engine binds the conversation and turn ids around a turn, the web layer a request id around
a request; conversations.threads carries them into the worker threads of a unit of work.
`IdsFilter` copies the bound ids onto each log record (attached to the log handler in
settings.LOGGING), where the JSON format prints them (LOG_FORMAT=json). Ids only: never a phone
number, document or text.
"""

import contextlib
import logging
import uuid
from contextvars import ContextVar

NAMES = ("conversation_id", "turn_id", "request_id")
EMPTY = (None, None, None)
_ids: ContextVar[tuple] = ContextVar("supportbot_log_ids", default=EMPTY)


def current() -> tuple:
    return _ids.get()


def restore(ids: tuple):
    """Bind ids captured with current() (in another thread); returns a token for reset()."""
    return _ids.set(ids)


def reset(token) -> None:
    _ids.reset(token)


def bind(**ids):
    """Bind some ids for the rest of the current context (a task, a request); returns a token."""
    unknown = set(ids) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown log ids {sorted(unknown)}")
    values = dict(zip(NAMES, _ids.get(), strict=True))
    values.update(ids)
    return _ids.set(tuple(values[name] for name in NAMES))


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


@contextlib.contextmanager
def bound(**ids):
    token = bind(**ids)
    try:
        yield
    finally:
        _ids.reset(token)


class IdsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in zip(NAMES, _ids.get(), strict=True):
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True
