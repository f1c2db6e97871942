"""The erasure (LGPD art. 18 IV and VI): a person's texts, payloads, transcripts, media files,
name, number and document, and the CRM's cached answers for their documents. What stays is
anonymous: the rows (so counts and turn timings stay right) and each wamid as a hash (so a late
redelivery of an erased message is neither stored again nor answered: see Message.wamid_hash).

Idempotent: erasing an erased customer changes and counts nothing.
"""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversations.models import Conversation, Customer, Message
from conversations.privacy import audit
from conversations.privacy.fields import (
    CONVERSATION_TEXT_BLANKS,
    MESSAGE_CONTENT_BLANKS,
    MESSAGE_FILE_FIELDS,
    TICKET_TEXT_BLANKS,
    customer_identity_blanks,
    forget_wamids,
    is_erased_customer,
)
from conversations.privacy.files import delete_files
from crm_gateway import lookup
from crm_gateway.documents import find_documents
from crm_gateway.keys import REDIS_ERRORS
from crm_gateway.models import Ticket

logger = logging.getLogger(__name__)


def _unerased_messages(customer: Customer):
    return Message.objects.filter(conversation__customer=customer).filter(
        Q(redacted_at=None) | ~Q(**{f: "" for f in MESSAGE_FILE_FIELDS}) | ~Q(provider_id=None)
    )


def _files(messages) -> list[str]:
    names = []
    for row in messages.values_list(*MESSAGE_FILE_FIELDS):
        names.extend(name for name in row if name)
    return names


def _documents(customer: Customer, messages) -> set[str]:
    """The customer's document and every valid one they wrote (the CRM cache keys on them)."""
    found = {customer.document} if customer.document else set()
    texts = messages.filter(direction=Message.Direction.INBOUND).values_list("text", flat=True)
    for text in texts.iterator(chunk_size=500):
        found.update(match.value for match in find_documents(text) if match.valid)
    return found


def plan(customers: list[Customer]) -> dict:
    """What erase() would change, counted; changes nothing (the commands' --dry-run)."""
    counts = {"customers": 0, "conversations": 0, "messages": 0, "files": 0, "documents": 0}
    for customer in customers:
        messages = _unerased_messages(customer)
        counts["customers"] += not is_erased_customer(customer.wa_id)
        counts["conversations"] += Conversation.objects.filter(customer=customer).count()
        counts["messages"] += messages.count()
        counts["files"] += len(_files(messages))
        counts["documents"] += len(_documents(customer, messages))
    return counts


def erase(customers: list[Customer], *, actor: str) -> dict:
    """Erase each customer's personal data; returns the counts, also written to the audit."""
    totals = {"customers": 0, "conversations": 0, "messages": 0, "files": 0, "documents": 0}
    for customer in customers:
        counts = _erase_one(customer)
        for name, value in counts.items():
            totals[name] += value
        audit.record("erase", actor, counts, customer_id=customer.pk)
        logger.info("erased customer %s: %s", customer.pk, counts)
    return totals


def _erase_one(customer: Customer) -> dict:
    messages = _unerased_messages(customer)
    documents = _documents(customer, messages)
    # Files first: a failure after them leaves fields pointing at nothing, and a second run
    # finishes the job; the other way round would leave files nobody can find.
    files = delete_files(_files(messages))
    now = timezone.now()
    with transaction.atomic():
        ids = list(messages.values_list("pk", flat=True))
        erased = Message.objects.filter(pk__in=ids)
        wamids = list(erased.values_list("pk", "provider_id", "wamid_hash"))
        # Nothing of theirs is left for the bot to answer.
        erased.filter(state=Message.State.PENDING).update(state=Message.State.SKIPPED)
        erased.update(
            **MESSAGE_CONTENT_BLANKS,
            **forget_wamids(wamids),
            **{f: "" for f in MESSAGE_FILE_FIELDS},
            redacted_at=now,
            updated_at=now,
        )
        conversations = Conversation.objects.filter(customer=customer)
        conversations.filter(status=Conversation.Status.OPEN).update(
            status=Conversation.Status.CLOSED, closed_at=now, updated_at=now
        )
        conversations.update(**CONVERSATION_TEXT_BLANKS)
        Ticket.objects.filter(conversation__customer=customer).update(**TICKET_TEXT_BLANKS)
        renamed = (
            Customer.objects.filter(pk=customer.pk)
            .exclude(wa_id__startswith="erased-")
            .update(**customer_identity_blanks(customer.pk))
        )
    for document in documents:
        try:
            lookup.invalidate(document)
        except REDIS_ERRORS as exc:  # the entries expire with their TTL anyway
            logger.warning("CRM cache of an erased document not cleared: %s", type(exc).__name__)
    return {
        "customers": renamed,
        "conversations": conversations.count() if renamed or ids else 0,
        "messages": len(ids),
        "files": files,
        "documents": len(documents),
    }
