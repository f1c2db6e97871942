"""Open, resolve and match outages: the functions behind the commands, the API and the engine."""

import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_gateway.models import Outage, normalise_regions

logger = logging.getLogger(__name__)

MESSAGE_MAX = 2000  # the notice template is added to it; WhatsApp allows 4096 characters
TITLE_MAX = 200


def parse_regions(text: str) -> list[str]:
    """ "Centro, Zona Norte" -> ["Centro", "Zona Norte"]; ValidationError when none is named."""
    return normalise_regions([part for part in (text or "").split(",") if part.strip()])


def parse_expected_end(text: str) -> datetime:
    """An ISO 8601 date-time in the future; without an offset it is read in TIME_ZONE."""
    try:
        when = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise ValidationError(
            f"Expected end {text!r} is not an ISO 8601 date-time such as 2026-11-25T18:30-03:00."
        ) from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    if when <= timezone.now():
        raise ValidationError("The expected end must be in the future.")
    return when


def open_outage(
    *,
    regions: list[str],
    message: str,
    title: str = "",
    expected_end: datetime | None = None,
) -> Outage:
    """Validate and store a new outage; ValidationError (nothing stored) on bad input."""
    regions = normalise_regions(regions)
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("The customer-facing message cannot be empty.")
    message = message.strip()
    if len(message) > MESSAGE_MAX:
        raise ValidationError(f"The message has more than {MESSAGE_MAX} characters.")
    if not isinstance(title, str):
        raise ValidationError("The title must be text.")
    title = " ".join(title.split()) or f"Falha massiva: {', '.join(regions)}"[:TITLE_MAX]
    if len(title) > TITLE_MAX:
        raise ValidationError(f"The title has more than {TITLE_MAX} characters.")
    outage = Outage(title=title, message=message, regions=regions, expected_end_at=expected_end)
    outage.full_clean()
    outage.save()
    logger.warning("outage %s opened for regions %s", outage.pk, ", ".join(regions))
    return outage


def resolve_outage(outage_id: int) -> tuple[Outage, bool]:
    """(outage, True) when this call resolved it, (outage, False) when it already was.

    Raises Outage.DoesNotExist for an unknown id.
    """
    with transaction.atomic():
        outage = Outage.objects.get(pk=outage_id)
        resolved = outage.resolve()
    if resolved:
        logger.warning("outage %s resolved", outage.pk)
    return outage, resolved


def active_outages_for(regions) -> list[Outage]:
    """Active outages covering any of `regions`; few are active at once, so match in Python."""
    regions = [region for region in regions if region]
    if not regions:
        return []
    return [outage for outage in Outage.objects.active() if outage.affects(regions)]
