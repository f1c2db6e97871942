"""The only code that speaks HTTP to the ISP's CRM.

Contract: what the CRM, or an adapter in front of it, serves.

    GET {CRM_BASE_URL}/customers/{document}/installation-points
    Authorization: Bearer {CRM_API_TOKEN}

    {document} is the customer's CPF (11 digits) or CNPJ (14 characters: digits and, since
    July 2026, upper-case letters), without punctuation; only documents with valid check digits
    are ever sent.
    200: a JSON list, possibly empty, of objects
         {"id": "...", "address": "...", "city": "...", "region": "...", "status": "..."}
         `id` is a string or a number, the others are strings; other keys are ignored. `region`
         is matched case-insensitively against the regions of active outages.
    404: no such customer.
    Anything else (another status, a body of another shape, no answer in time) is a CRM failure.

Calls use a connect timeout and a read timeout bounded by the runtime setting "CRM timeout";
5xx answers and connection errors are retried with backoff, and the whole call, retries
included, never takes longer than that timeout. A circuit breaker (crm_gateway.breaker) stops
calling a failing CRM for a cool-down. Without CRM_BASE_URL the built-in demo CRM answers.

Another CRM: subclass CrmClient, implement fetch_points(), and point the CRM_CLIENT_CLASS
setting at it (dotted path); crm_gateway.adapters builds it with base_url=CRM_BASE_URL and
token=CRM_API_TOKEN.
"""

import logging
import threading
import time
from urllib.parse import quote

import requests
from django.core.exceptions import ImproperlyConfigured

from conversations import metrics
from conversations.masking import mask_document
from crm_gateway.breaker import CircuitBreaker, crm_breaker

logger = logging.getLogger(__name__)

POINT_FIELDS = ("id", "address", "city", "region", "status")


class CrmError(Exception):
    """The CRM did not give a usable answer (down, slow, 5xx, bad body, breaker open)."""


class CrmUnavailable(CrmError):
    """The circuit breaker is open: the CRM was not called."""


def parse_points(body) -> list[dict]:
    """The installation points of a 200 answer, or CrmError when the body breaks the contract."""
    if not isinstance(body, list):
        raise CrmError(f"expected a JSON list, got {type(body).__name__}")
    points = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise CrmError(f"point {index} is {type(item).__name__}, not an object")
        missing = [name for name in POINT_FIELDS if name not in item]
        if missing:
            raise CrmError(f"point {index} lacks {', '.join(missing)}")
        point_id = item["id"]
        if isinstance(point_id, bool) or not isinstance(point_id, str | int):
            raise CrmError(f"point {index} has an id that is not a string or number")
        wrong = [name for name in POINT_FIELDS[1:] if not isinstance(item[name], str)]
        if wrong:
            raise CrmError(f"point {index}: {', '.join(wrong)} must be strings")
        points.append({name: item[name] for name in POINT_FIELDS} | {"id": str(point_id)})
    return points


class CrmClient:
    """Base class: breaker and time budget here, the CRM-specific call in fetch_points()."""

    def __init__(
        self, *, base_url: str = "", token: str = "", breaker: CircuitBreaker | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.breaker = breaker or crm_breaker

    def installation_points(self, document: str, *, timeout: float) -> list[dict] | None:
        """The customer's installation points, None for an unknown customer; CrmError otherwise.

        Returns within `timeout` seconds (plus a few milliseconds of bookkeeping).
        """
        if timeout <= 0:
            raise CrmError("no time left for the CRM")  # not the CRM's fault: breaker untouched
        if not self.breaker.allow():
            raise CrmUnavailable("circuit breaker open")
        started = time.monotonic()
        try:
            points = self.fetch_points(document, deadline=started + timeout)
        except CrmError as exc:
            logger.warning("CRM lookup of %s failed: %s", mask_document(document), exc)
            self.breaker.record_failure()
            raise
        finally:
            metrics.observe(metrics.CRM_REQUEST, time.monotonic() - started, operation="points")
        self.breaker.record_success()
        return points

    def fetch_points(self, document: str, *, deadline: float) -> list[dict] | None:
        """Ask the CRM before time.monotonic() reaches `deadline`; raise CrmError on failure."""
        raise NotImplementedError


class HttpCrmClient(CrmClient):
    """The contract above, over requests."""

    CONNECT_TIMEOUT_S = 3.05
    MAX_ATTEMPTS = 3
    BACKOFF_BASE_S = 0.2  # doubles after each failed attempt

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.base_url:
            raise ImproperlyConfigured("HttpCrmClient needs CRM_BASE_URL")
        self._local = threading.local()  # one Session (connection pool) per thread

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def fetch_points(self, document: str, *, deadline: float) -> list[dict] | None:
        url = f"{self.base_url}/customers/{quote(document, safe='')}/installation-points"
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        problem = "no attempt made"
        for attempt in range(1, self.MAX_ATTEMPTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                response = self.session.get(
                    url,
                    headers=headers,
                    timeout=(min(self.CONNECT_TIMEOUT_S, remaining), remaining),
                    allow_redirects=False,
                )
            except requests.ConnectionError as exc:  # also a connect timeout: worth a retry
                problem = f"connection failed ({type(exc).__name__})"
            except requests.Timeout as exc:
                raise CrmError("no answer within the CRM timeout") from exc
            except requests.RequestException as exc:
                raise CrmError(f"request failed ({type(exc).__name__})") from exc
            else:
                if response.status_code == 404:
                    return None
                if response.status_code == 200:
                    try:
                        body = response.json()
                    except ValueError as exc:
                        raise CrmError("answer is not JSON") from exc
                    return parse_points(body)
                if response.status_code < 500:
                    raise CrmError(f"CRM answered HTTP {response.status_code}")
                problem = f"CRM answered HTTP {response.status_code}"
            delay = self.BACKOFF_BASE_S * 2 ** (attempt - 1)
            if attempt == self.MAX_ATTEMPTS or time.monotonic() + delay >= deadline:
                break
            logger.info("CRM attempt %d: %s; retrying in %.1f s", attempt, problem, delay)
            time.sleep(delay)
        raise CrmError(f"{problem}; gave up within the CRM timeout")
