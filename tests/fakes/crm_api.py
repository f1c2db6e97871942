"""Helpers for CRM gateway tests: a scriptable CRM on FakeHTTPServer, an in-process CRM client
that counts calls, and runtime settings without the database."""

import dataclasses
import threading
import time
from collections.abc import Callable

from conversations.runtime import RuntimeSnapshot
from crm_gateway.breaker import CircuitBreaker
from crm_gateway.client import CrmClient, CrmError
from tests.fakes.http import Reply, Request

POINT = {
    "id": "PI-1",
    "address": "Rua Augusta, 1200",
    "city": "São Paulo",
    "region": "Centro",
    "status": "ativo",
}


def runtime(**overrides) -> RuntimeSnapshot:
    return dataclasses.replace(RuntimeSnapshot(), **overrides)


def use_runtime(monkeypatch, **overrides) -> RuntimeSnapshot:
    """Make the CRM gateway see these runtime settings (the rest at their defaults)."""
    snapshot = runtime(**overrides)
    monkeypatch.setattr("crm_gateway.lookup.crm_settings", lambda: snapshot)
    return snapshot


class FakeCrm:
    """A handler for FakeHTTPServer speaking the CRM contract.

    `customers` maps a document to its points; `script` is a list of Replies (or callables) used
    first, one per request, before falling back to the customers table.
    """

    def __init__(self, customers: dict | None = None, *, token: str = "crm-token"):
        self.customers = customers if customers is not None else {"52998224725": [POINT]}
        self.token = token
        self.script: list[Reply | Callable[[Request], Reply]] = []
        self.delay_s = 0.0
        self.records: dict[str, dict] = {}  # document -> {"name", "phones"}
        self.connections: dict[str, dict] = {}  # point id -> connection status
        self.invoices: dict[str, list] = {}  # document -> open invoices
        self.tickets: dict[str, dict] = {}  # idempotency key -> the ticket with its protocol

    def __call__(self, request: Request) -> Reply:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.script:
            step = self.script.pop(0)
            return step(request) if callable(step) else step
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "unauthorised"})
        parts = request.path.split("?")[0].strip("/").split("/")
        if parts[0] == "customers" and len(parts) == 2:
            record = self.records.get(parts[1])
            return Reply(404, {"error": "unknown"}) if record is None else Reply(200, record)
        if parts[0] == "customers" and len(parts) == 3 and parts[2] == "invoices":
            return Reply(200, self.invoices.get(parts[1], []))
        if parts[0] == "customers" and len(parts) == 3 and parts[2] == "tickets":
            return self._ticket(parts[1], request.json())
        if parts[0] == "installation-points" and len(parts) == 3 and parts[2] == "connection":
            status = self.connections.get(parts[1])
            return Reply(404, {"error": "unknown"}) if status is None else Reply(200, status)
        if len(parts) != 3 or parts[0] != "customers" or parts[2] != "installation-points":
            return Reply(404, {"error": "no such route"})
        points = self.customers.get(parts[1])
        return Reply(404, {"error": "unknown"}) if points is None else Reply(200, points)

    def _ticket(self, document: str, body: dict) -> Reply:
        """201 with a new protocol, 200 with the same one when the idempotency key repeats."""
        key = body["idempotency_key"]
        if key in self.tickets:
            return Reply(200, {"protocol": self.tickets[key]["protocol"]})
        self.tickets[key] = dict(body, document=document, protocol=f"P{len(self.tickets) + 1:05d}")
        return Reply(201, {"protocol": self.tickets[key]["protocol"]})


class CountingClient(CrmClient):
    """An in-process CRM that counts calls; `fail` makes it raise, `delay_s` makes it slow."""

    def __init__(
        self,
        customers: dict | None = None,
        *,
        delay_s: float = 0.0,
        fail=False,
        records: dict | None = None,
        **kwargs,
    ):
        super().__init__(**({"breaker": CircuitBreaker(threshold=1000)} | kwargs))
        self.customers = customers if customers is not None else {"52998224725": [POINT]}
        # document -> {"name", "phones"}: the customer records (identity); none by default.
        self.records = records if records is not None else {}
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[str] = []
        self.record_calls: list[str] = []
        self._lock = threading.Lock()

    def fetch_customer(self, document, *, deadline):
        with self._lock:
            self.record_calls.append(document)
        if self.fail:
            raise CrmError("CRM is down")
        record = self.records.get(document)
        return None if record is None else dict(record)

    def fetch_points(self, document, *, deadline):
        with self._lock:
            self.calls.append(document)
        if self.delay_s:
            time.sleep(min(self.delay_s, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                raise CrmError("timed out")
        if self.fail:
            raise CrmError("CRM is down")
        points = self.customers.get(document)
        return None if points is None else [dict(point) for point in points]


class ToolCrm(CountingClient):
    """CountingClient with the tools' CRM calls: connection per point, open invoices per
    document, tickets deduplicated by idempotency key. `fail` makes every call raise."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections = {"PI-1": {"online": False, "last_seen": None, "signal_dbm": -28.0}}
        self.invoices = {
            "52998224725": [
                {
                    "id": "F-1",
                    "due_date": "2026-01-10",
                    "amount": "99.90",
                    "status": "aberta",
                    "barcode": "34191.79001 01043.510047",
                }
            ]
        }
        self.tickets: dict[str, dict] = {}  # idempotency key -> ticket with protocol
        self.ticket_calls: list[dict] = []

    def fetch_connection(self, point_id, *, deadline):
        if self.fail:
            raise CrmError("CRM is down")
        return dict(self.connections[point_id])

    def fetch_invoices(self, document, *, deadline):
        if self.fail:
            raise CrmError("CRM is down")
        return [dict(invoice) for invoice in self.invoices.get(document, [])]

    def create_ticket(self, document, ticket, *, deadline):
        with self._lock:
            self.ticket_calls.append(dict(ticket))
            if self.fail:
                raise CrmError("CRM is down")
            key = ticket["idempotency_key"]
            if key not in self.tickets:
                self.tickets[key] = dict(ticket, protocol=f"P{len(self.tickets) + 1:05d}")
            return self.tickets[key]["protocol"]
