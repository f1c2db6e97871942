"""Phone numbers in one canonical form: one customer per number, whichever form of a Brazilian
mobile WhatsApp sends, and the CRM's phones in the same form (crm_gateway.customers), so identity
is a plain comparison."""

import re

# Formatting people and systems put around numbers; anything else makes it not a number.
_FORMATTING = re.compile(r"[\s+()\-.]")
# E.164: at most 15 digits; shorter than 8 is no phone number WhatsApp would give us.
_MIN_DIGITS = 8
_MAX_DIGITS = 15
# 55 + area code (two digits, neither 0) + an eight-digit mobile (first digit 6-9): the old form,
# from before the ninth digit was added. Landlines start with 2-5 and keep eight digits.
_BR_MOBILE_WITHOUT_NINE = re.compile(r"55([1-9][1-9])([6-9]\d{7})")


def normalise_wa_id(raw: str) -> str:
    """The canonical form of a WhatsApp number (digits only, Brazilian mobiles with the ninth digit).

    Raises ValueError for anything that is not a phone number.
    """
    if not isinstance(raw, str):
        raise ValueError("a WhatsApp number must be a string")
    digits = _FORMATTING.sub("", raw)
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("a WhatsApp number may only hold digits")
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        raise ValueError(f"a WhatsApp number has {_MIN_DIGITS}-{_MAX_DIGITS} digits")
    match = _BR_MOBILE_WITHOUT_NINE.fullmatch(digits)
    if match:
        return f"55{match.group(1)}9{match.group(2)}"
    return digits
