"""The one list of the personal data we hold, and what erasing it leaves behind.

Erase (erase.py) and retention (retention.py) both blank exactly these; a model or field that
holds what a customer said or who they are is added here, and both pick it up.
"""

import hashlib

# A message's content: what the customer or we said, as text, transcript or Meta's payload
# (which repeats the text, the number and the profile name), and Meta's error details.
MESSAGE_CONTENT_BLANKS = {"text": "", "transcript": "", "raw": {}, "delivery_errors": []}
# A message's files in the storage: deleted, then the field emptied.
MESSAGE_FILE_FIELDS = ("media_file",)
# A conversation's free text (an assistant's handoff reason may repeat the customer's words).
CONVERSATION_TEXT_BLANKS = {"handoff_reason": ""}
# The wamid is kept only as this: Meta's ids encode the customer's number.
ERASED_ID_PREFIX = "erased:"


def customer_identity_blanks(customer_id: int) -> dict:
    """Who the customer is; wa_id is unique, so it becomes a placeholder no number can match."""
    return {
        "wa_id": f"erased-{customer_id}",
        "reply_wa_id": "",
        "profile_name": "",
        "document": "",
    }


def erased_provider_id(wamid: str) -> str:
    """What an erased message keeps of its wamid: enough to know a redelivery, not the number."""
    if wamid.startswith(ERASED_ID_PREFIX):
        return wamid
    return ERASED_ID_PREFIX + hashlib.sha256(wamid.encode()).hexdigest()


def is_erased_customer(wa_id: str) -> bool:
    return wa_id.startswith("erased-")
