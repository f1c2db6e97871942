"""Logs: LOG_FORMAT=json gives one JSON object per line with the ids; neither format ever shows a
full CPF, phone number or message text, over a whole conversation at DEBUG level."""

import json
import logging
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.test import Client

from conversations import events, log_context
from conversations.engine import turn_loop
from conversations.models import Conversation
from tests.fakes.engine import configure, short_lived_connections  # noqa: F401 (autouse)
from tests.fakes.whatsapp_payloads import (
    post_signed_text,
)

SECRET = "logging-test-secret"
PHONE = "5521987650077"
CPF = "529.982.247-25"  # a demo CRM customer: the lookup, the context and the reply all run
TEXT = "Meu gato Bartolomeu mastigou o cabo da fibra"
FORBIDDEN = [PHONE, PHONE[2:], "52998224725", CPF, "Bartolomeu", "mastigou o cabo"]


def capture(log_format: str) -> tuple[logging.Handler, StringIO]:
    """A handler formatted as settings.LOGGING formats the console for `log_format`."""
    from logging.config import DictConfigurator

    config = DictConfigurator(django_settings.LOGGING)
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    formatter_config = dict(django_settings.LOGGING["formatters"][log_format])
    handler.setFormatter(config.configure_formatter(formatter_config))
    handler.addFilter(log_context.IdsFilter())
    return handler, stream


@pytest.fixture
def everything_logged():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    yield root
    root.setLevel(level)


def post(text: str) -> int:
    return post_signed_text(PHONE, text, SECRET)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_whole_conversation_logs_no_cpf_phone_or_text(
    log_format, everything_logged, settings, monkeypatch
):
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.WHATSAPP_ACCESS_TOKEN = ""  # the console sender logs every message it "sends"
    settings.CRM_BASE_URL = ""
    settings.OPENAI_API_KEY = ""
    monkeypatch.setattr(events, "send_wake", lambda conversation_id: True)
    await sync_to_async(configure)()
    handler, stream = capture(log_format)
    everything_logged.addHandler(handler)
    try:
        assert await sync_to_async(post)(TEXT) == 200
        conversation = await Conversation.objects.aget(customer__wa_id=PHONE)
        await turn_loop.run_turns(conversation.pk)
        assert await sync_to_async(post)(f"meu CPF é {CPF}") == 200
        await turn_loop.run_turns(conversation.pk)
        await sync_to_async(Client().get)("/admin/login/")
    finally:
        everything_logged.removeHandler(handler)

    lines = stream.getvalue().splitlines()
    assert len(lines) > 10, "the conversation logged (almost) nothing: the scan would prove nothing"
    assert any("CRM lookup" in line for line in lines)  # the DEBUG lines were on
    for line in lines:
        for secret in FORBIDDEN:
            assert secret not in line, f"{secret!r} logged: {line}"
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        turn_lines = [r for r in records if r["logger"] == "conversations.engine.turn_loop"]
        assert turn_lines and all(r["conversation_id"] == conversation.pk for r in turn_lines)
        assert any("turn_id" in r for r in turn_lines)
        assert any("request_id" in r for r in records if r["logger"].endswith("views"))


def test_the_default_format_is_readable_text(settings):
    assert settings.LOG_FORMAT == "text"
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "text"


def test_log_ids_are_bound_only_inside_their_block():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    with log_context.bound(conversation_id=7, turn_id=8):
        log_context.IdsFilter().filter(record)
    assert (record.conversation_id, record.turn_id) == (7, 8)
    assert not hasattr(record, "request_id")
    later = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    log_context.IdsFilter().filter(later)
    assert not hasattr(later, "conversation_id")


def test_it_refuses_an_unknown_log_id():
    with pytest.raises(ValueError, match="unknown log ids"):
        log_context.bind(phone="5511")
