"""conversations.business_hours: the validators of the admin's fields, and when the staff are
back, in São Paulo time."""

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from conversations.business_hours import (
    WEEKDAYS,
    closed_text,
    staff_back,
    validate_business_hours,
    validate_handoff_closed_template,
)
from conversations.engine.handoff import handoff_text
from conversations.runtime import RuntimeSnapshot

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
# Defaults: Monday to Friday 08:00-20:00, Saturday 08:00-14:00, Sunday closed.
RUNTIME = RuntimeSnapshot(llm_model="x")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in December 2026 (the 7th is a Monday), São Paulo."""
    return datetime(2026, 12, day, hour, minute, tzinfo=SAO_PAULO)


@pytest.mark.parametrize(
    ("now", "back"),
    [
        (at(7, 10), ""),  # Monday morning: in
        (at(7, 7, 59), "hoje às 08:00"),
        (at(7, 20), "amanhã às 08:00"),  # closing time is out
        (at(12, 15), "na segunda-feira às 08:00"),  # Saturday after 14:00, Sunday closed
        (at(13, 10), "amanhã às 08:00"),  # Sunday
        # 22:30 UTC on Monday is 19:30 in São Paulo: still in.
        (datetime(2026, 12, 7, 22, 30, tzinfo=ZoneInfo("UTC")), ""),
        (datetime(2026, 12, 7, 23, 30, tzinfo=ZoneInfo("UTC")), "amanhã às 08:00"),
    ],
)
def test_it_says_when_the_staff_are_back(now, back):
    assert staff_back(RUNTIME, now) == back


def test_it_says_soon_when_no_day_has_hours():
    closed = dataclasses.replace(RUNTIME, **{f"hours_{day}": "" for day in WEEKDAYS})
    closed = dataclasses.replace(closed, hours_monday="bad")  # slipped past validation: closed
    assert staff_back(closed, at(7, 10)) == "em breve"


def test_the_handoff_message_adds_the_after_hours_text_only_when_closed():
    assert handoff_text(RUNTIME, at(7, 10)) == RUNTIME.handoff_message
    late = handoff_text(RUNTIME, at(7, 22))
    assert late.startswith(RUNTIME.handoff_message)
    assert "a equipe volta amanhã às 08:00" in late


@pytest.mark.parametrize("value", ["", "08:00-18:00", "00:00-24:00"])
def test_it_accepts_business_hours(value):
    validate_business_hours(value)


@pytest.mark.parametrize(
    "value", ["8-18", "08:00", "18:00-08:00", "08:00-08:00", "25:00-26:00", "08:00-24:30"]
)
def test_it_refuses_bad_business_hours(value):
    with pytest.raises(ValidationError):
        validate_business_hours(value)


@pytest.mark.parametrize("value", ["volta {dia}", "volta {when", "{0}"])
def test_it_refuses_an_after_hours_text_with_other_placeholders(value):
    with pytest.raises(ValidationError):
        validate_handoff_closed_template(value)


def test_it_fills_the_after_hours_text_and_keeps_stray_braces():
    assert closed_text("Voltamos {when}.", "amanhã às 08:00") == "Voltamos amanhã às 08:00."
    assert closed_text("", "hoje às 14:00").startswith("No momento estamos fora")
