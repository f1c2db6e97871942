"""Download a customer's media from the WhatsApp Cloud API, in two steps (REFERENCE.md):

1. `GET {WHATSAPP_API_BASE_URL}/{media-id}` answers `url`, `mime_type`, `sha256`, `file_size`;
2. `GET url` at once (it lives 5 minutes), with the same Bearer token and our User-Agent. When
   that URL answers 401, 403 or 404 it has expired: step 1 is asked for a fresh one, once.

Checked before the bytes are kept: the mime type is one we expect for the kind, the declared size
and the real size (counted while reading) are within the limit, and the sha256 matches. Failures
raise MediaError with a short reason free of personal data; `retryable` says whether trying
again later may help. Synchronous (requests): the engine calls it from a thread, never the
webhook. Every request's timeout is cut to what is left of the caller's deadline.
"""

import base64
import binascii
import hashlib
import logging
import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

USER_AGENT = "supportbot/1.0 (WhatsApp media download)"
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 20.0
CHUNK = 64 * 1024
# Attempts of the whole two-step download per call, on errors worth retrying (connection
# errors, 429, 5xx), as long as the deadline leaves time; the pause between them doubles.
MAX_ATTEMPTS = 2
RETRY_PAUSE_S = 0.5
EXPIRED_URL_STATUSES = frozenset({401, 403, 404})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# What WhatsApp sends for each kind (its documented formats); anything else is refused.
EXPECTED_MIME_TYPES = {
    "audio": frozenset(
        {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus"}
    ),
    "image": frozenset({"image/jpeg", "image/png"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "document": frozenset(
        {
            "application/pdf",
            "text/plain",
            "text/csv",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        }
    ),
}
# The Cloud API's own limits, for the kinds whose limit is not a runtime setting.
DEFAULT_MAX_BYTES = {"video": 16 * 1024 * 1024, "document": 100 * 1024 * 1024}


class MediaError(Exception):
    """The media could not be downloaded. `reason` is short and has no personal data."""

    def __init__(self, reason: str, *, retryable: bool = False):
        super().__init__(reason)
        self.reason = reason[:255]
        self.retryable = retryable


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    mime_type: str  # without parameters: "audio/ogg", not "audio/ogg; codecs=opus"
    sha256: str  # hex


@dataclass(frozen=True)
class _Info:
    url: str
    mime_type: str
    sha256: str
    declared_size: int | None


def base_mime_type(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip().lower()


def download_media(
    media_id: str,
    kind: str,
    *,
    max_bytes: int | None = None,
    expected_sha256: str = "",
    deadline: float | None = None,
) -> Downloaded:
    """The media's bytes, checked; raises MediaError. `deadline`: a time.monotonic() reading
    after which nothing more is attempted (None: READ_TIMEOUT per request, no overall cap)."""
    if not settings.WHATSAPP_ACCESS_TOKEN:
        raise MediaError("no WHATSAPP_ACCESS_TOKEN: media cannot be downloaded")
    if kind not in EXPECTED_MIME_TYPES:
        raise MediaError(f"media of type {kind[:16]!r} is not downloaded")
    limit = max_bytes if max_bytes is not None else DEFAULT_MAX_BYTES.get(kind, 0)
    pause = RETRY_PAUSE_S
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _download_once(media_id, kind, limit, expected_sha256, deadline)
        except MediaError as exc:
            left = _left(deadline)
            if not exc.retryable or attempt == MAX_ATTEMPTS or (left is not None and left < pause):
                raise
            logger.info("media download attempt %d failed (%s); retrying", attempt, exc.reason)
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")


def _download_once(
    media_id: str, kind: str, limit: int, expected_sha256: str, deadline: float | None
) -> Downloaded:
    info = _media_info(media_id, kind, limit, deadline)
    try:
        data = _fetch(info.url, limit, deadline)
    except _ExpiredURL:
        logger.info("media URL refused; asking the Cloud API for a fresh one")
        info = _media_info(media_id, kind, limit, deadline)
        try:
            data = _fetch(info.url, limit, deadline)
        except _ExpiredURL as exc:
            raise MediaError(f"media URL answered {exc.status} twice", retryable=True) from None
    digest = hashlib.sha256(data)
    for declared in (info.sha256, expected_sha256):
        if declared and not _same_digest(declared, digest.digest()):
            raise MediaError("sha256 does not match the downloaded media")
    return Downloaded(data=data, mime_type=info.mime_type, sha256=digest.hexdigest())


def _same_digest(declared: str, digest: bytes) -> bool:
    """WhatsApp writes sha256 in hex (media endpoint) or base64 (webhook): accept either."""
    declared = declared.strip()
    if declared.lower() == digest.hex():
        return True
    try:
        return base64.b64decode(declared, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


class _ExpiredURL(Exception):
    def __init__(self, status: int):
        self.status = status


def _media_info(media_id: str, kind: str, limit: int, deadline: float | None) -> _Info:
    url = f"{settings.WHATSAPP_API_BASE_URL}/{media_id}"
    try:
        response = _session().get(url, headers=_headers(), timeout=_timeout(deadline))
    except requests.RequestException as exc:
        raise MediaError(f"media id request failed: {type(exc).__name__}", retryable=True) from None
    if response.status_code == 404:
        raise MediaError("media id not found (404)")
    if response.status_code >= 300:
        retryable = response.status_code in RETRY_STATUSES
        raise MediaError(f"media id answered {response.status_code}", retryable=retryable)
    try:
        body = response.json()
        media_url = str(body["url"])
    except (ValueError, KeyError, TypeError):
        raise MediaError("media id answer has no url", retryable=True) from None
    mime_type = base_mime_type(str(body.get("mime_type") or ""))
    if mime_type not in EXPECTED_MIME_TYPES[kind]:
        raise MediaError(f"unexpected mime type {mime_type[:40]!r} for {kind}")
    declared = _declared_size(body.get("file_size"))
    if limit and declared is not None and declared > limit:
        raise MediaError(f"declared size {declared} bytes is over the {limit}-byte limit")
    return _Info(media_url, mime_type, str(body.get("sha256") or ""), declared)


def _declared_size(value) -> int | None:
    """file_size is a number in some answers and a string in others; None when neither."""
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _fetch(url: str, limit: int, deadline: float | None) -> bytes:
    try:
        with _session().get(
            url, headers=_headers(), timeout=_timeout(deadline), stream=True
        ) as response:
            if response.status_code in EXPIRED_URL_STATUSES:
                raise _ExpiredURL(response.status_code)
            if response.status_code >= 300:
                retryable = response.status_code in RETRY_STATUSES
                raise MediaError(f"media URL answered {response.status_code}", retryable=retryable)
            received = bytearray()
            for chunk in response.iter_content(CHUNK):
                received.extend(chunk)
                if limit and len(received) > limit:
                    raise MediaError(f"media is over the {limit}-byte limit")
                if deadline is not None and time.monotonic() > deadline:
                    raise MediaError("media download ran out of time")
            return bytes(received)
    except requests.RequestException as exc:
        raise MediaError(
            f"media URL request failed: {type(exc).__name__}", retryable=True
        ) from None


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _timeout(deadline: float | None) -> tuple[float, float]:
    left = _left(deadline)
    if left is None:
        return (CONNECT_TIMEOUT, READ_TIMEOUT)
    if left <= 0:
        raise MediaError("no time left to download the media")
    return (min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left))


def _headers() -> dict[str, str]:
    return {
        "Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}",
        "User-Agent": USER_AGENT,
    }


_shared: list[requests.Session] = []
_shared_lock = threading.Lock()


def _session() -> requests.Session:
    """One pooled session shared by the worker's threads; retries are ours (above)."""
    with _shared_lock:
        if _shared:
            return _shared[0]
        adapter = HTTPAdapter(
            max_retries=Retry(total=0, redirect=3),
            pool_maxsize=getattr(settings, "WORKER_THREADS", 10),
        )
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _shared.append(session)
        return session
