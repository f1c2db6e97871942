"""What the offline assistant does through the tools (conversations.assistant.tools), in the
same words every time: hand over, list the open invoices, check the connection and offer a
ticket, open it on "sim". Each function returns the text to add to the reply, and promises only
what a tool confirmed: without a tool session (tools off) it says what it cannot do.
"""

import json
import re
from datetime import datetime

from django.utils import timezone

from conversations.assistant import tools

NOT_CHECKED = (
    "Este número de WhatsApp não está registrado para o documento informado, então não posso "
    'mostrar dados da conta por aqui. Se quiser, escreva "atendente" e uma pessoa da nossa '
    "equipe confirma os seus dados."
)
UNAVAILABLE = (
    "Não consegui consultar o sistema agora. Tente de novo em alguns minutos, ou escreva "
    '"atendente" para falar com a nossa equipe.'
)
NO_HANDOFF = (
    "No momento não consigo transferir a conversa para um atendente por aqui. Posso ajudar com "
    "quedas de conexão, internet lenta ou faturas."
)
NO_INVOICES = "Não encontrei faturas em aberto no seu cadastro."
# The offer names the point, so a "sim" in the next message knows which point it is for.
OFFER_TICKET = 'Quer que eu abra um chamado técnico para o ponto {point}? Responda "sim".'
_OFFER = re.compile(r"abra um chamado técnico para o ponto (\S+)\?")
YES = ("sim", "s", "pode", "pode abrir", "quero", "ok", "claro", "por favor", "sim por favor")


def call(session, name: str, **arguments) -> dict:
    return json.loads(session.run(name, json.dumps(arguments)))


def hand_over(session) -> str:
    """ "" when handed over (the engine sends the handoff message), else why not."""
    if session is None:
        return NO_HANDOFF
    result = call(session, tools.TRANSFER, reason="o cliente pediu um atendente")
    return "" if result.get("ok") else UNAVAILABLE


def _failure(result: dict) -> str:
    return NOT_CHECKED if result.get("erro") == tools.NOT_CHECKED else UNAVAILABLE


def invoices(session) -> str:
    if session is None:
        return UNAVAILABLE
    result = call(session, tools.INVOICES)
    if "erro" in result:
        return _failure(result)
    found = result["faturas"]
    if not found:
        return NO_INVOICES
    lines = ["Estas são as suas faturas em aberto:"]
    for invoice in found:
        amount = invoice["amount"].replace(".", ",")
        line = f"• vencimento {_date(invoice['due_date'])}, R$ {amount} ({invoice['status']})"
        if invoice.get("barcode"):
            line += f"\n  Linha digitável: {invoice['barcode']}"
        if invoice.get("pix_code"):
            line += f"\n  PIX copia e cola: {invoice['pix_code']}"
        if invoice.get("pdf_url"):
            line += f"\n  PDF: {invoice['pdf_url']}"
        lines.append(line)
    return "\n".join(lines)


def connection(session) -> str:
    """The connection of the customer's points, and the offer of a ticket for the first one
    that is offline (or, when all are online, for the first one)."""
    if session is None:
        return UNAVAILABLE
    result = call(session, tools.POINTS)
    if "erro" in result:
        return _failure(result)
    points = result["pontos"]
    if not points:
        return "Não encontrei pontos de instalação no seu cadastro."
    parts, offline = [], []
    for point in points:
        status = call(session, tools.CONNECTION, point_id=point["id"])
        where = f"{point['id']} ({point['address']})"
        if "erro" in status:
            parts.append(f"Não consegui ver a conexão do ponto {where} agora.")
        elif status["online"]:
            parts.append(f"O ponto {where} aparece online para nós.")
        else:
            offline.append(point["id"])
            seen = (
                f", visto por último em {_date(status['last_seen'])}" if status["last_seen"] else ""
            )
            parts.append(f"O ponto {where} está offline{seen}.")
    parts.append(OFFER_TICKET.format(point=(offline or [points[0]["id"]])[0]))
    return " ".join(parts)


def offered_point(transcript: list[dict]) -> str:
    """The point our last reply offered a ticket for, or ""."""
    for message in reversed(transcript):
        if message.get("role") == "assistant":
            match = _OFFER.search(str(message.get("content") or ""))
            return match.group(1) if match else ""
    return ""


def open_ticket(session, point_id: str) -> str:
    if session is None:
        return UNAVAILABLE
    result = call(
        session,
        tools.TICKET,
        point_id=point_id,
        category="no_connection",
        description="Cliente relata estar sem conexão (atendimento automático).",
    )
    if "erro" in result:
        return _failure(result)
    return (
        f"Pronto! Abri o chamado técnico para o ponto {point_id}. "
        f"O número de protocolo é {result['protocolo']}."
    )


def _date(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    if timezone.is_aware(parsed):
        return timezone.localtime(parsed).strftime("%d/%m às %H:%M")
    return parsed.strftime("%d/%m/%Y")
