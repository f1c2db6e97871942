"""The one list of the personal data we hold, and what erasing it leaves behind.

Erase (erase.py) and retention (retention.py) both blank exactly these; a model or field that
holds what a customer said or who they are is added here, and both pick it up.
"""

import hashlib

from django.db import connection
from django.db.models import Case, CharField, F, Func, Value, When
from django.db.models.functions import Coalesce

# A message's content: what the customer or we said, as text, transcript or Meta's payload
# (which repeats the text, the number and the profile name), and Meta's error details.
# The media id and checksum (from the webhook) would let the file be fetched again from Meta.
MESSAGE_CONTENT_BLANKS = {
    "text": "",
    "transcript": "",
    "raw": {},
    "delivery_errors": [],
    "media_id": "",
    "media_sha256": "",
}
# A message's files in the storage: deleted, then the field emptied.
MESSAGE_FILE_FIELDS = ("media_file",)
# A conversation's free text (an assistant's handoff reason may repeat the customer's words).
CONVERSATION_TEXT_BLANKS = {"handoff_reason": ""}
# A ticket's description, written by the assistant from what the customer said.
TICKET_TEXT_BLANKS = {"description": ""}


def customer_identity_blanks(customer_id: int) -> dict:
    """Who the customer is; wa_id is unique, so it becomes a placeholder no number can match."""
    return {
        "wa_id": f"erased-{customer_id}",
        "reply_wa_id": "",
        "profile_name": "",
        "document": "",
    }


def wamid_hash(wamid: str) -> str:
    """What is kept of a wamid once the message is erased: enough to know a redelivery."""
    return hashlib.sha256(wamid.encode()).hexdigest()


class _Sha256Hex(Func):
    """wamid_hash() in PostgreSQL's SQL, so a batch's UPDATE needs no value per row."""

    template = "encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')"
    output_field = CharField()


def forget_wamids(rows) -> dict:
    """The UPDATE values that empty provider_id and keep its hash, for rows of
    (pk, provider_id, wamid_hash): messages stored before wamid_hash existed get theirs now
    (every expression of an UPDATE reads the row as it was, provider_id included)."""
    if connection.vendor == "postgresql":
        return {
            "provider_id": None,
            "wamid_hash": Coalesce(F("wamid_hash"), _Sha256Hex(F("provider_id"))),
        }
    whens = [
        When(pk=pk, then=Value(wamid_hash(wamid))) for pk, wamid, kept in rows if wamid and not kept
    ]
    hashes = Case(*whens, default=F("wamid_hash")) if whens else F("wamid_hash")
    return {"provider_id": None, "wamid_hash": hashes}


def is_erased_customer(wa_id: str) -> bool:
    return wa_id.startswith("erased-")
