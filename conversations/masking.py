"""Masks for personal data in logs and screens (LGPD): never log a full number, document or text."""

import re


def mask_phone(number: str) -> str:
    """Keep the country/area prefix and the last two digits: 5511*******34."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 6) + digits[-2:]


def mask_document(document: str) -> str:
    """CPF as ***.982.247-**, CNPJ as **.***.345/01DE-**; anything else fully starred."""
    compact = re.sub(r"[^0-9A-Za-z]", "", document or "").upper()
    if len(compact) == 11:
        return f"***.{compact[3:6]}.{compact[6:9]}-**"
    if len(compact) == 14:
        return f"**.***.{compact[5:8]}/{compact[8:12]}-**"
    return "*" * len(compact)


def mask_text(text: str) -> str:
    """Message text never reaches a log: only its length."""
    return f"<{len(text or '')} chars>"
