"""X-Hub-Signature-256: HMAC-SHA256 of the raw request body, keyed with the app secret."""

import hashlib
import hmac
import re

HEADER = "X-Hub-Signature-256"
_HEADER_VALUE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def _key(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign_body(secret: bytes | str, body: bytes) -> str:
    """The header value Meta sends for this body: `sha256=<hex>`."""
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes | str, body: bytes, header: str | None) -> bool:
    """True when `header` is a well-formed signature of exactly these bytes (constant-time)."""
    if not secret or not header:
        return False
    match = _HEADER_VALUE.fullmatch(header.strip())
    if not match:
        return False
    expected = hmac.new(_key(secret), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1).lower())
