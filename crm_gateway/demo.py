"""The built-in demo CRM used when CRM_BASE_URL is unset (embedded mode and the simulator).

Seeded customers (all with valid check digits):
- CPF 529.982.247-25: one point in region "Centro" (São Paulo);
- CPF 111.444.777-35: two points, regions "Zona Norte" and "Zona Sul" (Rio de Janeiro);
  `open_outage --regions "Zona Norte" --message "..."` puts this customer under an outage;
- CNPJ 11.222.333/0001-81: a company with one point in region "Campinas";
- alphanumeric CNPJ 12.ABC.345/01DE-35: a company with one point in region "Centro";
- CPF 390.533.447-05: a customer with no installation points.
Any other valid document is an unknown customer.

Identity: CPF 529.982.247-25 has the simulator's default number (+55 11 98765-0001) on file, so
the simulator's customer is checked for it and sees addresses, invoices, connection and tickets;
the other customers have other numbers, so the same simulator gets only "document found" and the
offer of a person (try CPF 111.444.777-35). Point PI-1001 is offline, to show the ticket flow.
"""

import hashlib
import threading
import time

from crm_gateway.client import CrmClient, CrmError
from crm_gateway.customers import normalise_phone

DEMO_CUSTOMERS: dict[str, list[dict]] = {
    "52998224725": [
        {
            "id": "PI-1001",
            "address": "Rua Augusta, 1200, ap. 41",
            "city": "São Paulo",
            "region": "Centro",
            "status": "ativo",
        }
    ],
    "11144477735": [
        {
            "id": "PI-2001",
            "address": "Rua Voluntários da Pátria, 300",
            "city": "Rio de Janeiro",
            "region": "Zona Norte",
            "status": "ativo",
        },
        {
            "id": "PI-2002",
            "address": "Avenida Atlântica, 1500",
            "city": "Rio de Janeiro",
            "region": "Zona Sul",
            "status": "suspenso",
        },
    ],
    "11222333000181": [
        {
            "id": "PI-3001",
            "address": "Avenida Brasil, 500, galpão 3",
            "city": "Campinas",
            "region": "Campinas",
            "status": "ativo",
        }
    ],
    "12ABC34501DE35": [
        {
            "id": "PI-4001",
            "address": "Rua da Consolação, 88, sala 12",
            "city": "São Paulo",
            "region": "Centro",
            "status": "ativo",
        }
    ],
    "39053344705": [],
}


# The simulator's default number (conversations/staff/simulator.py) is on file for the first one.
DEMO_RECORDS: dict[str, dict] = {
    "52998224725": {"name": "Maria Aparecida Souza", "phones": ["(11) 98765-0001"]},
    "11144477735": {"name": "João Carlos Pereira", "phones": ["(21) 98888-7777", "2133334444"]},
    "11222333000181": {"name": "Brasil Logística Ltda", "phones": ["+55 19 3232-1000"]},
    "12ABC34501DE35": {"name": "Consolação Design Ltda", "phones": ["11 97777-1234"]},
    "39053344705": {"name": "Ana Beatriz Lima", "phones": ["(31) 99999-0000"]},
}
DEMO_CONNECTIONS: dict[str, dict] = {
    "PI-1001": {"online": False, "last_seen": "2026-01-01T08:40:00-03:00", "signal_dbm": -29.5},
    "PI-2001": {"online": True, "last_seen": None, "signal_dbm": -19.2},
    "PI-2002": {"online": False, "last_seen": "2025-12-10T10:00:00-03:00", "signal_dbm": None},
    "PI-3001": {"online": True, "last_seen": None, "signal_dbm": -21.0},
    "PI-4001": {"online": True, "last_seen": None, "signal_dbm": None},
}
DEMO_INVOICES: dict[str, list[dict]] = {
    "52998224725": [
        {
            "id": "FAT-88121",
            "due_date": "2026-01-10",
            "amount": "99.90",
            "status": "aberta",
            "barcode": "34191.79001 01043.510047 91020.150008 1 13230000009990",
            "pix_code": "00020126580014br.gov.bcb.pix0136demo-provedor-pix-fat8812152040000"
            "530398654059.905802BR5913PROVEDOR DEMO6009SAO PAULO62070503***6304ABCD",
            "pdf_url": "https://demo-provedor.example/faturas/FAT-88121.pdf",
        }
    ],
    "11144477735": [
        {"id": "FAT-77001", "due_date": "2025-12-05", "amount": "129.90", "status": "vencida"},
        {"id": "FAT-77002", "due_date": "2026-01-05", "amount": "129.90", "status": "aberta"},
    ],
}


class DemoCrmClient(CrmClient):
    # Seconds each answer takes, so the demo shows what the cache saves (0 keeps tests fast).
    delay_s = 0.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tickets: dict[str, dict] = {}  # idempotency key -> the ticket and its protocol
        self._tickets_lock = threading.Lock()

    def _wait(self, deadline: float) -> None:
        if self.delay_s:
            if time.monotonic() + self.delay_s > deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                raise CrmError("demo CRM: no answer within the CRM timeout")
            time.sleep(self.delay_s)

    def fetch_points(self, document: str, *, deadline: float) -> list[dict] | None:
        self._wait(deadline)
        points = DEMO_CUSTOMERS.get(document)
        return None if points is None else [dict(point) for point in points]

    def fetch_customer(self, document: str, *, deadline: float) -> dict | None:
        self._wait(deadline)
        record = DEMO_RECORDS.get(document)
        if record is None:
            return None
        return {"name": record["name"], "phones": [normalise_phone(p) for p in record["phones"]]}

    def fetch_connection(self, point_id: str, *, deadline: float) -> dict:
        self._wait(deadline)
        if point_id not in DEMO_CONNECTIONS:
            raise CrmError("demo CRM: no such installation point")
        return dict(DEMO_CONNECTIONS[point_id])

    def fetch_invoices(self, document: str, *, deadline: float) -> list[dict]:
        self._wait(deadline)
        return [dict(invoice) for invoice in DEMO_INVOICES.get(document, [])]

    def create_ticket(self, document: str, ticket: dict, *, deadline: float) -> str:
        self._wait(deadline)
        key = ticket["idempotency_key"]
        with self._tickets_lock:
            if key not in self.tickets:  # a repeated key gets the first ticket's protocol
                number = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10**8
                self.tickets[key] = dict(ticket, document=document, protocol=f"DEMO-{number:08d}")
            return self.tickets[key]["protocol"]
