"""The CRM's answers beyond installation points, checked against the contract (parse_*), and the
phone numbers the CRM keeps on file for a customer, in the form WhatsApp numbers are stored in
(normalise_phone), so identity is a plain comparison.

Every parse_* raises CrmError when a 200 body breaks the contract; the caller treats that as a
CRM failure, like any other.
"""

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from conversations.phone import normalise_wa_id
from crm_gateway.errors import CrmError

TICKET_CATEGORIES = ("no_connection", "slow_connection", "intermittent", "billing", "other")
INVOICE_OPTIONAL_FIELDS = ("barcode", "pix_code", "pdf_url")

_FORMATTING = re.compile(r"[\s+()\-.]")


def normalise_phone(raw) -> str | None:
    """A CRM phone as WhatsApp numbers are stored (digits, country code, ninth digit), or None
    when it is no phone number. CRMs often keep Brazilian numbers without the country code, so
    10 or 11 digits get "55" in front."""
    if not isinstance(raw, str):
        return None
    digits = _FORMATTING.sub("", raw)
    if len(digits) in (10, 11) and not digits.startswith("55"):
        digits = f"55{digits}"
    try:
        return normalise_wa_id(digits)
    except ValueError:
        return None


def parse_customer(body) -> dict:
    """{"name": str, "phones": [normalised, ...]} from a 200 answer; other keys are ignored, and
    so are phones that are no phone number (they can never match a WhatsApp number)."""
    if not isinstance(body, dict):
        raise CrmError(f"expected a JSON object, got {type(body).__name__}")
    name, phones = body.get("name"), body.get("phones")
    if not isinstance(name, str):
        raise CrmError("customer lacks a string name")
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise CrmError("customer phones must be a list of strings")
    normalised = [normalise_phone(phone) for phone in phones]
    return {"name": name, "phones": sorted({phone for phone in normalised if phone})}


def parse_connection(body) -> dict:
    """{"online": bool, "last_seen": ISO-8601 or None, "signal_dbm": float or None}."""
    if not isinstance(body, dict):
        raise CrmError(f"expected a JSON object, got {type(body).__name__}")
    online, last_seen, signal = body.get("online"), body.get("last_seen"), body.get("signal_dbm")
    if not isinstance(online, bool):
        raise CrmError("connection lacks a boolean online")
    if last_seen is not None:
        if not isinstance(last_seen, str):
            raise CrmError("last_seen must be an ISO-8601 string or null")
        try:
            datetime.fromisoformat(last_seen)
        except ValueError:
            raise CrmError("last_seen is not ISO-8601") from None
    if signal is not None and (isinstance(signal, bool) or not isinstance(signal, int | float)):
        raise CrmError("signal_dbm must be a number or null")
    return {
        "online": online,
        "last_seen": last_seen,
        "signal_dbm": None if signal is None else float(signal),
    }


def parse_invoices(body) -> list[dict]:
    """The open invoices: id, due_date, amount (a decimal string), status and, where the CRM
    gives them, barcode (linha digitável), pix_code and pdf_url."""
    if not isinstance(body, list):
        raise CrmError(f"expected a JSON list, got {type(body).__name__}")
    invoices = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise CrmError(f"invoice {index} is {type(item).__name__}, not an object")
        missing = [name for name in ("id", "due_date", "amount", "status") if name not in item]
        if missing:
            raise CrmError(f"invoice {index} lacks {', '.join(missing)}")
        amount = item["amount"]
        try:
            if isinstance(amount, bool) or not isinstance(amount, int | float | str):
                raise InvalidOperation
            amount = Decimal(str(amount)).quantize(Decimal("0.01"))
        except InvalidOperation:
            raise CrmError(f"invoice {index} has an amount that is not a number") from None
        if not all(isinstance(item[name], str | int) for name in ("id", "due_date", "status")):
            raise CrmError(f"invoice {index}: id, due_date and status must be strings")
        invoice = {
            "id": str(item["id"]),
            "due_date": str(item["due_date"]),
            "amount": str(amount),
            "status": str(item["status"]),
        }
        for name in INVOICE_OPTIONAL_FIELDS:
            if isinstance(item.get(name), str) and item[name].strip():
                invoice[name] = item[name].strip()
        invoices.append(invoice)
    return invoices


def parse_protocol(body) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("protocol"), str | int):
        raise CrmError("ticket answer lacks a protocol")
    protocol = str(body["protocol"]).strip()
    if not protocol or len(protocol) > 64:
        raise CrmError("ticket protocol is empty or longer than 64 characters")
    return protocol
