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

    GET {CRM_BASE_URL}/customers/{document}
    200: {"name": "...", "phones": ["...", ...]} (other keys are ignored); 404: no such customer.
         The phones are what identity is checked against: a customer is *checked* when the
         WhatsApp number they write from, normalised (country code 55 added to 10-11 digit
         numbers, ninth digit added to old-form mobiles), is one of them.
    GET {CRM_BASE_URL}/installation-points/{point_id}/connection
    200: {"online": bool, "last_seen": ISO-8601 or null, "signal_dbm": number or null}
    GET {CRM_BASE_URL}/customers/{document}/invoices?status=open
    200: a list of {"id", "due_date", "amount", "status", "barcode"?, "pix_code"?, "pdf_url"?}
    POST {CRM_BASE_URL}/customers/{document}/tickets
         {"point_id", "category", "description", "idempotency_key"}
    201: {"protocol": "..."} for a new ticket; 200 with the same protocol when the key repeats.
    For connection, invoices and tickets, 404 or 501 means the CRM does not offer the feature.

Another CRM: subclass CrmClient, implement fetch_points() and, where the CRM can, fetch_customer(),
fetch_connection(), fetch_invoices() and create_ticket() (left out, they raise CrmNotSupported
and the assistant says the feature is not available); point the CRM_CLIENT_CLASS setting at it
(dotted path); crm_gateway.adapters builds it with base_url=CRM_BASE_URL and token=CRM_API_TOKEN.
Without fetch_customer() no customer is ever checked, so no personal data reaches the assistant.
"""

import logging
import threading
import time
from urllib.parse import quote

import requests
from django.core.exceptions import ImproperlyConfigured

from conversations import metrics
from conversations.masking import mask_document
from crm_gateway import customers
from crm_gateway.breaker import CircuitBreaker, crm_breaker
from crm_gateway.errors import CrmError, CrmNotSupported, CrmUnavailable

__all__ = ["CrmClient", "CrmError", "CrmNotSupported", "CrmUnavailable", "HttpCrmClient"]

logger = logging.getLogger(__name__)

POINT_FIELDS = ("id", "address", "city", "region", "status")


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
        return self._call("points", self.fetch_points, document, timeout=timeout)

    def customer(self, document: str, *, timeout: float) -> dict | None:
        """{"name", "phones" (normalised)}, None for an unknown customer; CrmError otherwise."""
        return self._call("customer", self.fetch_customer, document, timeout=timeout)

    def connection_status(self, point_id: str, *, timeout: float) -> dict:
        return self._call("connection", self.fetch_connection, point_id, timeout=timeout)

    def open_invoices(self, document: str, *, timeout: float) -> list[dict]:
        return self._call("invoices", self.fetch_invoices, document, timeout=timeout)

    def open_ticket(self, document: str, ticket: dict, *, timeout: float) -> str:
        """The protocol of the ticket `ticket` ({"point_id", "category", "description",
        "idempotency_key"}); the same key always gives the same protocol."""
        return self._call("ticket", self.create_ticket, document, ticket, timeout=timeout)

    def _call(self, what: str, fetch, *args, timeout: float):
        if timeout <= 0:
            raise CrmError("no time left for the CRM")  # not the CRM's fault: breaker untouched
        if not self.breaker.allow():
            raise CrmUnavailable("circuit breaker open")
        started = time.monotonic()
        try:
            result = fetch(*args, deadline=started + timeout)
        except CrmNotSupported:
            raise  # the CRM answered; it just has no such feature
        except CrmError as exc:
            logger.warning("CRM %s call for %s failed: %s", what, _masked(what, args[0]), exc)
            self.breaker.record_failure()
            raise
        finally:
            metrics.observe(metrics.CRM_REQUEST, time.monotonic() - started, operation=what)
        self.breaker.record_success()
        return result

    def fetch_points(self, document: str, *, deadline: float) -> list[dict] | None:
        """Ask the CRM before time.monotonic() reaches `deadline`; raise CrmError on failure."""
        raise NotImplementedError

    def fetch_customer(self, document: str, *, deadline: float) -> dict | None:
        raise CrmNotSupported("this CRM does not give customer records")

    def fetch_connection(self, point_id: str, *, deadline: float) -> dict:
        raise CrmNotSupported("this CRM does not give connection status")

    def fetch_invoices(self, document: str, *, deadline: float) -> list[dict]:
        raise CrmNotSupported("this CRM does not give invoices")

    def create_ticket(self, document: str, ticket: dict, *, deadline: float) -> str:
        raise CrmNotSupported("this CRM does not open tickets")


def _masked(what: str, key: str) -> str:
    return key if what == "connection" else mask_document(key)  # point ids are no personal data


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
        status, body = self._request(
            "GET", f"customers/{_q(document)}/installation-points", deadline
        )
        return None if status == 404 else parse_points(body)

    def fetch_customer(self, document: str, *, deadline: float) -> dict | None:
        status, body = self._request("GET", f"customers/{_q(document)}", deadline)
        return None if status == 404 else customers.parse_customer(body)

    def fetch_connection(self, point_id: str, *, deadline: float) -> dict:
        path = f"installation-points/{_q(point_id)}/connection"
        return customers.parse_connection(self._supported(*self._request("GET", path, deadline)))

    def fetch_invoices(self, document: str, *, deadline: float) -> list[dict]:
        path = f"customers/{_q(document)}/invoices?status=open"
        return customers.parse_invoices(self._supported(*self._request("GET", path, deadline)))

    def create_ticket(self, document: str, ticket: dict, *, deadline: float) -> str:
        path = f"customers/{_q(document)}/tickets"
        answer = self._request("POST", path, deadline, body=ticket, ok=(200, 201))
        return customers.parse_protocol(self._supported(*answer))

    @staticmethod
    def _supported(status: int, body):
        if status in (404, 501):
            raise CrmNotSupported(f"CRM answered HTTP {status}: feature not available")
        return body

    def _request(self, method: str, path: str, deadline: float, *, body=None, ok=(200,)):
        """(status, JSON body) of a 2xx in `ok`, or (404 or 501, None). 5xx answers and
        connection errors are retried within the deadline (a POST too: it carries an
        idempotency key); anything else is a CrmError."""
        url = f"{self.base_url}/{path}"
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        problem = "no attempt made"
        for attempt in range(1, self.MAX_ATTEMPTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=headers,
                    json=body,
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
                if response.status_code in (404, 501):
                    return response.status_code, None
                if response.status_code in ok:
                    try:
                        return response.status_code, response.json()
                    except ValueError as exc:
                        raise CrmError("answer is not JSON") from exc
                if response.status_code < 500:
                    raise CrmError(f"CRM answered HTTP {response.status_code}")
                problem = f"CRM answered HTTP {response.status_code}"
            delay = self.BACKOFF_BASE_S * 2 ** (attempt - 1)
            if attempt == self.MAX_ATTEMPTS or time.monotonic() + delay >= deadline:
                break
            logger.info("CRM attempt %d: %s; retrying in %.1f s", attempt, problem, delay)
            time.sleep(delay)
        raise CrmError(f"{problem}; gave up within the CRM timeout")


def _q(value: str) -> str:
    return quote(value, safe="")
