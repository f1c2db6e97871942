"""The staff's business hours (per weekday, America/Sao_Paulo, in the runtime settings): the
validators of the admin's fields, and whether the staff are in now or when they are back, in
the words the handoff message uses ("hoje às 14:00", "amanhã às 08:00", "na segunda-feira às
08:00")."""

import re
import string
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations import defaults

TIME_ZONE = ZoneInfo(defaults.BUSINESS_HOURS_TIME_ZONE)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_NAMES = (
    "na segunda-feira",
    "na terça-feira",
    "na quarta-feira",
    "na quinta-feira",
    "na sexta-feira",
    "no sábado",
    "no domingo",
)
_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)")


def validate_handoff_closed_template(value: str) -> None:
    """The after-hours text may use only {when}."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError:
        raise ValidationError(
            _(
                "Unbalanced braces: use {when} for when the staff are back and {{ or }} for a "
                "literal brace."
            )
        ) from None
    unknown = sorted({name for name in fields if name not in defaults.HANDOFF_CLOSED_PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            _("Unknown placeholder %(names)s: only {when} is available."),
            params={"names": ", ".join("{" + name + "}" for name in unknown)},
        )


def validate_business_hours(value: str) -> None:
    """Blank (closed) or "HH:MM-HH:MM" with the opening before the closing."""
    if not value:
        return
    match = _HOURS.fullmatch(value)
    if not match or (match.group(3) == "24" and match.group(4) != "00"):
        raise ValidationError(_('Write the hours as "08:00-18:00", or leave blank for closed.'))
    opens, closes = value.split("-")
    if opens >= closes:
        raise ValidationError(_("The opening time must be before the closing time."))


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def day_hours(runtime, weekday: int) -> tuple[int, int] | None:
    """(opens, closes) in minutes after midnight on that weekday (0 = Monday), None: closed.
    A value that slipped past validation counts as closed rather than failing the handoff."""
    value = (getattr(runtime, f"hours_{WEEKDAYS[weekday]}", "") or "").strip()
    if not _HOURS.fullmatch(value):
        return None
    opens, closes = (_minutes(part) for part in value.split("-"))
    return (opens, closes) if opens < closes else None


def staff_back(runtime, now: datetime | None = None) -> str:
    """ "" while the staff are in; otherwise when they are back, in Portuguese; "em breve" when
    no day of the week has hours."""
    local = timezone.localtime(now or timezone.now(), TIME_ZONE)
    minute = local.hour * 60 + local.minute
    today = day_hours(runtime, local.weekday())
    if today and today[0] <= minute < today[1]:
        return ""
    for ahead in range(8):
        day = local + timedelta(days=ahead)
        hours = day_hours(runtime, day.weekday())
        if hours is None or (ahead == 0 and minute >= hours[0]):
            continue
        at = f"{hours[0] // 60:02d}:{hours[0] % 60:02d}"
        when = {0: "hoje", 1: "amanhã"}.get(ahead, WEEKDAY_NAMES[day.weekday()])
        return f"{when} às {at}"
    return "em breve"


def closed_text(template: str, when: str) -> str:
    template = (template or "").strip() or defaults.HANDOFF_CLOSED_TEMPLATE
    try:
        return template.format(when=when)
    except (ValueError, KeyError, IndexError, AttributeError):
        return template.replace("{when}", when)
