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

    def __call__(self, request: Request) -> Reply:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.script:
            step = self.script.pop(0)
            return step(request) if callable(step) else step
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "unauthorised"})
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "customers" or parts[2] != "installation-points":
            return Reply(404, {"error": "no such route"})
        points = self.customers.get(parts[1])
        return Reply(404, {"error": "unknown"}) if points is None else Reply(200, points)


class CountingClient(CrmClient):
    """An in-process CRM that counts calls; `fail` makes it raise, `delay_s` makes it slow."""

    def __init__(
        self, customers: dict | None = None, *, delay_s: float = 0.0, fail=False, **kwargs
    ):
        super().__init__(**({"breaker": CircuitBreaker(threshold=1000)} | kwargs))
        self.customers = customers if customers is not None else {"52998224725": [POINT]}
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[str] = []
        self._lock = threading.Lock()

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
