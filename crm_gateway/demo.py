"""The built-in demo CRM used when CRM_BASE_URL is unset (embedded mode and the simulator).

Seeded customers (all with valid check digits):
- CPF 529.982.247-25: one point in region "Centro" (São Paulo);
- CPF 111.444.777-35: two points, regions "Zona Norte" and "Zona Sul" (Rio de Janeiro);
  `open_outage --regions "Zona Norte" --message "..."` puts this customer under an outage;
- CNPJ 11.222.333/0001-81: a company with one point in region "Campinas";
- alphanumeric CNPJ 12.ABC.345/01DE-35: a company with one point in region "Centro";
- CPF 390.533.447-05: a customer with no installation points.
Any other valid document is an unknown customer.
"""

import time

from crm_gateway.client import CrmClient, CrmError

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


class DemoCrmClient(CrmClient):
    # Seconds each answer takes, so the demo shows what the cache saves (0 keeps tests fast).
    delay_s = 0.0

    def fetch_points(self, document: str, *, deadline: float) -> list[dict] | None:
        if self.delay_s:
            if time.monotonic() + self.delay_s > deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                raise CrmError("demo CRM: no answer within the CRM timeout")
            time.sleep(self.delay_s)
        points = DEMO_CUSTOMERS.get(document)
        return None if points is None else [dict(point) for point in points]
