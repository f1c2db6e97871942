"""conversations.runtime_settings: the knobs' bounds, the rules between them and the outage notice
template, checked on the model itself (the admin's form: tests/staff/test_admin_runtime.py)."""

import pytest
from django.core.exceptions import ValidationError

from conversations.runtime_settings import RuntimeSettings, validate_notice_template


def errors_of(**fields) -> dict:
    with pytest.raises(ValidationError) as raised:
        RuntimeSettings(**fields).full_clean()
    return raised.value.message_dict


def test_the_defaults_are_valid():
    RuntimeSettings().full_clean()


@pytest.mark.parametrize("value", [0, 100_000])
def test_a_lock_ttl_out_of_bounds_is_refused(value):
    assert "lock_ttl_seconds" in errors_of(lock_ttl_seconds=value)


def test_the_quiet_window_may_not_exceed_the_max_wait():
    errors = errors_of(debounce_quiet_ms=5000, debounce_max_wait_ms=3000)
    assert errors == {
        "debounce_max_wait_ms": [
            "The debounce max wait must be at least the quiet window (5000 ms)."
        ]
    }


def test_the_backoff_cap_may_not_be_below_its_base():
    assert "backoff_cap_ms" in errors_of(backoff_base_ms=500, backoff_cap_ms=200)


def test_a_notice_template_with_the_message_placeholder_is_accepted():
    validate_notice_template("Falha na sua região: {message} Pedimos desculpas.")
    validate_notice_template("Chaves literais: {{ e }}")


@pytest.mark.parametrize(
    ("template", "complaint"),
    [("Olá {nome}", "Unknown placeholder {nome}"), ("Olá {message", "Unbalanced braces")],
)
def test_a_notice_template_that_would_break_sending_is_refused(template, complaint):
    with pytest.raises(ValidationError) as raised:
        validate_notice_template(template)
    assert complaint in raised.value.messages[0]
