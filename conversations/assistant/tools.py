"""The assistant's tools: their JSON Schemas (a contract with the prompts, the offline assistant
and the tests), the checks every call's arguments pass, and what each tool does.

A call never raises: a bad call (unknown tool, arguments that break the schema, a point that is
not the customer's) and a CRM that fails both come back as {"erro": "..."}, the output the model
reads and can act on. Personal data (addresses, invoices, connection, tickets) only for a customer
whose identity is checked (crm_gateway.context).

transfer_to_human changes nothing itself: it records the request on the ToolSession and the
engine hands the conversation over when it ends the turn (one message, one commit).
"""

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from crm_gateway import tickets
from crm_gateway.adapters import get_crm_client
from crm_gateway.client import CrmClient, CrmError, CrmNotSupported
from crm_gateway.customers import TICKET_CATEGORIES

logger = logging.getLogger(__name__)

TRANSFER = "transfer_to_human"
POINTS = "get_installation_points"
CONNECTION = "get_connection_status"
INVOICES = "list_open_invoices"
TICKET = "open_ticket"

NOT_CHECKED = "identidade não confirmada"
NO_DOCUMENT = "documento não informado: peça o CPF ou CNPJ do titular"
UNAVAILABLE = "indisponível no momento"
NOT_OFFERED = "recurso não disponível neste provedor"
TEXT_MAX = {"reason": 255, "description": 1000, "point_id": 64}


def _tool(name: str, description: str, properties: dict) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
        "strict": True,
    }


_POINT_ID = {"type": "string", "description": "O id do ponto, como get_installation_points dá."}
TOOLS: list[dict] = [
    _tool(
        TRANSFER,
        "Transfere a conversa para um atendente humano. Use quando o cliente pedir uma pessoa, "
        "quando a identidade não puder ser confirmada ou quando você não puder resolver.",
        {"reason": {"type": "string", "description": "Motivo curto, sem dados pessoais."}},
    ),
    _tool(
        POINTS,
        "Pontos de instalação do cliente com identidade confirmada: endereço, situação e "
        "falha massiva ativa na região.",
        {},
    ),
    _tool(
        CONNECTION,
        "Situação da conexão de um ponto: online ou offline, visto por último, sinal óptico.",
        {"point_id": _POINT_ID},
    ),
    _tool(
        INVOICES,
        "Faturas em aberto: vencimento, valor, situação, linha digitável do boleto, código "
        "PIX copia e cola e link do PDF, quando houver.",
        {},
    ),
    _tool(
        TICKET,
        "Abre um chamado técnico ou financeiro para um ponto e devolve o número de protocolo, "
        "que você informa ao cliente.",
        {
            "point_id": _POINT_ID,
            "category": {"type": "string", "enum": list(TICKET_CATEGORIES)},
            "description": {"type": "string", "description": "O problema, em poucas frases."},
        },
    ),
]
SCHEMAS = {tool["name"]: tool["parameters"] for tool in TOOLS}


class BadCall(Exception):
    """The call breaks the schema or our rules; the message goes back to the model."""


@dataclass
class ToolSession:
    """What the tools of one turn may see and do, and what they did."""

    conversation_id: int
    first_message_id: int  # the batch's first message: part of the ticket's idempotency key
    context: Any  # crm_gateway.context.CustomerContext
    crm_timeout_s: float = 12.0
    client: CrmClient | None = None
    handoff_reason: str = ""  # set by transfer_to_human; the engine applies it
    calls: list[dict] = field(default_factory=list)  # [{"name", "ok", "ms"}] for Turn.tool_calls
    protocols: list[str] = field(default_factory=list)  # tickets opened (or found) this turn

    def run(self, name: str, arguments: str) -> str:
        """The function_call_output for one call: JSON, {"erro": ...} when it failed."""
        started = time.monotonic()
        try:
            args = check_arguments(name, arguments)
            output, ok = getattr(self, f"_{name}")(**args), True
        except BadCall as exc:
            output, ok = {"erro": str(exc)}, False
        except CrmNotSupported:
            output, ok = {"erro": NOT_OFFERED}, False
        except CrmError:
            output, ok = {"erro": UNAVAILABLE}, False
        except Exception:  # a bug in a tool must not cost the reply; the model hears "unavailable"
            logger.exception("conversation %s: tool %s crashed", self.conversation_id, name)
            output, ok = {"erro": UNAVAILABLE}, False
        ms = max(0, round((time.monotonic() - started) * 1000))
        self.calls.append({"name": name[:64], "ok": ok, "ms": ms})
        return json.dumps(output, ensure_ascii=False)

    # --- the tools --------------------------------------------------------------------------

    def _transfer_to_human(self, reason: str) -> dict:
        self.handoff_reason = reason
        return {
            "ok": True,
            "aviso": "A conversa vai para um atendente; a mensagem de transferência é enviada "
            "automaticamente ao cliente.",
        }

    def _get_installation_points(self) -> dict:
        self._require_checked()
        outages = self.context.active_outages
        points = []
        for point in self.context.installation_points:
            region = str(point.get("region", "")).casefold()
            affecting = [
                {"titulo": o["title"], "mensagem": o["message"], "previsao": o["expected_end"]}
                for o in outages
                if region in {str(r).casefold() for r in o.get("regions", [])}
            ]
            points.append({**point, "falha_massiva": affecting})
        return {"pontos": points}

    def _get_connection_status(self, point_id: str) -> dict:
        self._require_point(point_id)
        status = self._client().connection_status(point_id, timeout=self.crm_timeout_s)
        return {"point_id": point_id, **status}

    def _list_open_invoices(self) -> dict:
        self._require_checked()
        return {
            "faturas": self._client().open_invoices(
                self.context.document, timeout=self.crm_timeout_s
            )
        }

    def _open_ticket(self, point_id: str, category: str, description: str) -> dict:
        self._require_point(point_id)
        ticket = tickets.open_ticket(
            document=self.context.document,
            conversation_id=self.conversation_id,
            key=tickets.idempotency_key(self.conversation_id, self.first_message_id, point_id),
            point_id=point_id,
            category=category,
            description=description,
            timeout=self.crm_timeout_s,
            client=self._client(),
        )
        if ticket.protocol not in self.protocols:
            self.protocols.append(ticket.protocol)
        return {"protocolo": ticket.protocol, "categoria": ticket.category}

    # --- rules ------------------------------------------------------------------------------

    def _client(self) -> CrmClient:
        return self.client or get_crm_client()

    def _require_checked(self) -> None:
        if not getattr(self.context, "document", ""):
            raise BadCall(NO_DOCUMENT)
        if not getattr(self.context, "identity_checked", False):
            raise BadCall(NOT_CHECKED)

    def _require_point(self, point_id: str) -> None:
        self._require_checked()
        ids = {str(point.get("id")) for point in self.context.installation_points}
        if point_id not in ids:
            raise BadCall(f"o ponto {point_id!r} não é um ponto deste cliente")


def check_arguments(name: str, arguments: str) -> dict:
    """The arguments as a dict, if they match the tool's schema; BadCall otherwise."""
    schema = SCHEMAS.get(name)
    if schema is None:
        raise BadCall(f"ferramenta desconhecida: {name[:64]!r}")
    try:
        args = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        raise BadCall("os argumentos não são um JSON válido") from None
    if not isinstance(args, dict):
        raise BadCall("os argumentos devem ser um objeto JSON")
    properties = schema["properties"]
    unknown = sorted(set(args) - set(properties))
    if unknown:
        raise BadCall(f"argumentos desconhecidos: {', '.join(unknown)}")
    missing = [key for key in schema["required"] if key not in args]
    if missing:
        raise BadCall(f"faltam argumentos: {', '.join(missing)}")
    for key, value in args.items():
        if not isinstance(value, str) or not value.strip():
            raise BadCall(f"{key} deve ser um texto não vazio")
        if "enum" in properties[key] and value not in properties[key]["enum"]:
            raise BadCall(f"{key} deve ser um de: {', '.join(properties[key]['enum'])}")
        if len(value) > TEXT_MAX.get(key, 1000):
            raise BadCall(f"{key} tem mais de {TEXT_MAX.get(key, 1000)} caracteres")
    return {key: value.strip() for key, value in args.items()}
