"""The runtime settings' validators: bounds with messages staff can act on, the outage notice's
placeholders, the LLM prices' lines, the business hours' fields."""

import string

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations import defaults
from conversations.business_hours import validate_business_hours

# WhatsApp refuses text bodies longer than this.
WHATSAPP_TEXT_MAX = 4096


def max_chars(limit: int, why: str) -> MaxLengthValidator:
    return MaxLengthValidator(limit, f"At most {limit} characters, please: {why}.")


def between(low: int, high: int, unit: str) -> list:
    """Bounds for a runtime knob, with messages staff can act on."""
    unit = f" {unit}" if unit else ""
    return [
        MinValueValidator(low, f"Must be at least {low}{unit}."),
        MaxValueValidator(
            high, f"Must be at most {high}{unit}; a larger value is almost certainly a typo."
        ),
    ]


def validate_notice_template(value: str) -> None:
    """The outage notice may use only {message}; anything else would break sending the notice."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError:
        raise ValidationError(
            "Unbalanced braces: use {message} for the outage text and {{ or }} for a literal brace."
        ) from None
    unknown = sorted({name for name in fields if name not in defaults.OUTAGE_NOTICE_PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            "Unknown placeholder %(names)s: only {message} is available.",
            params={"names": ", ".join("{" + name + "}" for name in unknown)},
        )


def parse_llm_prices(text: str) -> dict[str, tuple[float, float, float]]:
    """ "model input cached_input output" per line -> {model: (input, cached, output)} in USD per
    million tokens. Raises ValidationError naming the first bad line."""
    prices = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = tuple(float(part) for part in parts[1:])
        except ValueError:
            values = ()
        if len(values) != 3 or any(not 0 <= value < 10_000 for value in values):
            raise ValidationError(
                _(
                    "Line %(number)s: write the model name and three prices (input, cached "
                    "input, output, in USD per million tokens), e.g. gpt-5-mini 0.25 0.025 2.00."
                ),
                params={"number": number},
            )
        prices[parts[0]] = values
    return prices


def validate_llm_prices(value: str) -> None:
    parse_llm_prices(value)


def hours_field(day: str, label) -> models.CharField:
    return models.CharField(
        label,
        max_length=11,
        blank=True,
        default=defaults.BUSINESS_HOURS[day],
        validators=[validate_business_hours],
        help_text=_('When staff answer, e.g. "08:00-18:00" (São Paulo time); blank: closed.'),
    )
