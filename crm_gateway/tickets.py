"""Opening a ticket in the CRM, once: the idempotency key is derived from what identifies the
request (conversation, the batch's first message, installation point), so a retry of the call,
the model asking twice in one turn, or the batch re-run after a worker died all send the same key;
the CRM answers the same protocol and we keep one Ticket row."""

import hashlib
import logging

from django.db import IntegrityError, transaction

from conversations.masking import mask_document
from crm_gateway.adapters import get_crm_client
from crm_gateway.client import CrmClient
from crm_gateway.customers import TICKET_CATEGORIES
from crm_gateway.models import Ticket

logger = logging.getLogger(__name__)

DESCRIPTION_MAX = 1000


def idempotency_key(conversation_id: int, first_message_id: int, point_id: str) -> str:
    seed = f"ticket:{conversation_id}:{first_message_id}:{point_id}"
    return hashlib.sha256(seed.encode()).hexdigest()[:40]


def open_ticket(
    *,
    document: str,
    conversation_id: int,
    key: str,
    point_id: str,
    category: str,
    description: str,
    timeout: float,
    client: CrmClient | None = None,
) -> Ticket:
    """The ticket for `key`: ours if we already have it (no CRM call), else the CRM's.
    Raises ValueError for a category outside the list and CrmError when the CRM fails."""
    if category not in TICKET_CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    existing = Ticket.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    description = " ".join(description.split())[:DESCRIPTION_MAX]
    payload = {
        "point_id": point_id,
        "category": category,
        "description": description,
        "idempotency_key": key,
    }
    protocol = (client or get_crm_client()).open_ticket(document, payload, timeout=timeout)
    try:
        with transaction.atomic():
            ticket = Ticket.objects.create(
                protocol=protocol,
                category=category,
                point_id=point_id,
                description=description,
                conversation_id=conversation_id,
                idempotency_key=key,
            )
    except IntegrityError:  # the same key stored a moment ago (another attempt of this turn)
        ticket = Ticket.objects.get(idempotency_key=key)
    logger.info(
        "conversation %s: ticket %s opened for %s (%s)",
        conversation_id,
        protocol,
        mask_document(document),
        category,
    )
    return ticket
