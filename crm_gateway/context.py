"""What the engine calls once per turn: the customer's document, installation points (through
the cached CRM lookup) and the active outages that affect them, with the notices still to send.

Identity: the customer is *checked* for the document when their WhatsApp number is one of the
phones the CRM has on file for it (crm_gateway.customers.normalise_phone). Only then does the
context (and so the LLM) hold addresses, and only then do the tools give personal data.

`build_customer_context` never raises for CRM or Redis failures and returns within the CRM
timeout plus a little bookkeeping. The engine sends each notice with
`whatsapp.send_text(kind="notice")` right after `claim_notice` returns True.
"""

import logging
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from conversations.masking import mask_document
from conversations.models import Conversation, Customer
from crm_gateway import documents, lookup
from crm_gateway.models import Outage, OutageNotice
from crm_gateway.outages import active_outages_for

logger = logging.getLogger(__name__)

KNOWN = "known"
UNKNOWN = "unknown"
INVALID = "invalid"

# Used when the runtime template is blank.
DEFAULT_NOTICE_TEMPLATE = (
    "Aviso: identificamos uma falha na rede que atende a sua região. {message}"
)


@dataclass
class CustomerContext:
    document_status: str  # "known" | "unknown" | "invalid"
    masked_document: str  # "" when unknown
    installation_points: list[dict] = field(default_factory=list)
    crm_ok: bool = True  # False when the CRM failed (and no stale copy): reply anyway
    active_outages: list[dict] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)  # (outage id, notice text)
    identity_checked: bool = False  # the WhatsApp number is on file for the document
    # For the tools only, never in prompt_text(): the full document and the WhatsApp number.
    document: str = field(default="", repr=False)
    wa_id: str = field(default="", repr=False)

    def prompt_text(self) -> str:
        """Portuguese context for the assistant; never the full document."""
        lines = ["Contexto do cliente (sistema de atendimento):"]
        if self.document_status == INVALID:
            lines.append(
                "- O cliente enviou um CPF/CNPJ inválido (os dígitos verificadores não conferem). "
                "Peça com educação que confira os números e envie de novo."
            )
            if self.masked_document:
                lines.append(f"- Documento já cadastrado antes: {self.masked_document}.")
        elif self.document_status == UNKNOWN:
            lines.append(
                "- Documento do cliente: não informado. Para consultar contrato, conexão ou "
                "fatura, peça o CPF ou CNPJ do titular."
            )
        else:
            lines.append(f"- Documento do cliente: {self.masked_document}.")
        if self.masked_document:
            if not self.crm_ok:
                lines.append(
                    "- O cadastro (CRM) não respondeu agora: não invente dados de contrato ou "
                    "endereço; siga o atendimento e, se preciso, diga que vai verificar."
                )
            elif self.installation_points and not self.identity_checked:
                lines.append(
                    "- Documento encontrado no cadastro, mas a identidade NÃO está confirmada: "
                    "este número de WhatsApp não é um dos telefones do titular. Não revele nem "
                    "use endereços, faturas, chamados ou situação da conexão; pode dizer que o "
                    "documento foi encontrado e se há falha massiva na região. Ofereça "
                    "transferir para um atendente (transfer_to_human), que confirma a identidade."
                )
            elif self.installation_points:
                lines.append("- Identidade confirmada (o número é do titular).")
                lines.append("- Pontos de instalação:")
                for point in self.installation_points:
                    lines.append(
                        f"  - ponto {point.get('id')}: {point.get('address')}, "
                        f"{point.get('city')} (região {point.get('region')}), "
                        f"situação: {point.get('status')}"
                    )
            else:
                lines.append("- Nenhum ponto de instalação encontrado para este documento.")
        for outage in self.active_outages:
            end = outage.get("expected_end")
            when = f" Previsão de normalização: {_local_time(end)}." if end else ""
            lines.append(
                f"- FALHA MASSIVA ativa na região do cliente: {outage['title']}. "
                f"{outage['message']}{when}"
            )
        return "\n".join(lines)


def _local_time(iso: str) -> str:
    return timezone.localtime(datetime.fromisoformat(iso)).strftime("%d/%m/%Y %H:%M")


def notice_text(template: str, message: str) -> str:
    """The runtime template with {message} filled in; without the placeholder, template + message."""
    template = (template or "").strip() or DEFAULT_NOTICE_TEMPLATE
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        if "message" in names:
            return template.format(message=message)
    except (ValueError, KeyError, IndexError, AttributeError):
        pass  # stray braces: fill {message} literally and leave the rest as written
    if "{message}" in template:
        return template.replace("{message}", message)
    return f"{template} {message}"


def _release_connection() -> None:
    """Give the database connection back (to the pool on PostgreSQL) for the CRM call, which can
    take seconds: hundreds of turns waiting on the CRM must not hold hundreds of connections."""
    if not connection.in_atomic_block:
        connection.close()


def build_customer_context(conversation_id: int, batch_texts: list[str]) -> CustomerContext:
    started = time.monotonic()
    conversation = Conversation.objects.select_related("customer").get(pk=conversation_id)
    customer = conversation.customer
    found = documents.find_document(batch_texts)
    if found is not None and found.valid and found.value != customer.document:
        Customer.objects.filter(pk=customer.pk).update(document=found.value)
        customer.document = found.value
        logger.info(
            "conversation %s: document %s stored", conversation_id, mask_document(found.value)
        )
    status = INVALID if found is not None and not found.valid else KNOWN
    document = customer.document
    if not document:
        return CustomerContext(
            document_status=status if status == INVALID else UNKNOWN, masked_document=""
        )
    context = CustomerContext(
        document_status=status,
        masked_document=mask_document(document),
        document=document,
        wa_id=customer.wa_id,
    )
    _release_connection()
    record = _executor().submit(_record_lookup, document, conversation_id)
    result = _safe_lookup(lookup.lookup_points, document, conversation_id)
    phones = (record.result().customer or {}).get("phones") or []
    context.identity_checked = customer.wa_id in phones
    context.crm_ok = result.crm_ok
    context.installation_points = result.points
    regions = [point.get("region") for point in result.points]
    outages = active_outages_for(regions)
    context.active_outages = [_outage_dict(outage) for outage in outages]
    if outages:
        template = lookup.crm_settings().outage_notice_template
        sent = set(
            OutageNotice.objects.filter(
                conversation_id=conversation_id, outage__in=outages
            ).values_list("outage_id", flat=True)
        )
        context.notices = [
            (outage.pk, notice_text(template, outage.message))
            for outage in outages
            if outage.pk not in sent
        ]
    logger.debug(
        "conversation %s: context %s, checked=%s, %d points, %d outages, crm_ok=%s in %.0f ms",
        conversation_id,
        context.document_status,
        context.identity_checked,
        len(context.installation_points),
        len(context.active_outages),
        context.crm_ok,
        (time.monotonic() - started) * 1000,
    )
    return context


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Threads for the customer-record lookup, which runs alongside the points lookup (both
    touch Redis and the CRM). One per turn in flight, like the slow-I/O pool the points lookup
    runs on: a smaller pool would queue new customers' record lookups behind a slow CRM. A pool
    of its own, since a unit of the slow-I/O pool waiting on that same pool could starve it."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.WORKER_MAX_TURNS, thread_name_prefix="crm-record"
            )
        return _pool


def _safe_lookup(lookup_fn, document: str, conversation_id: int) -> lookup.LookupResult:
    try:
        return lookup_fn(document)
    except Exception:  # the lookup is built not to raise; a bug there must not cost the reply
        logger.exception("conversation %s: CRM lookup failed unexpectedly", conversation_id)
        return lookup.LookupResult(lookup.ERROR, [], "none")


def _record_lookup(document: str, conversation_id: int) -> lookup.LookupResult:
    """The customer-record lookup, on a pool thread: reading the runtime settings there may open
    a database connection, given back at once so idle pool threads hold none."""
    try:
        return _safe_lookup(lookup.lookup_customer, document, conversation_id)
    finally:
        connections.close_all()


def _outage_dict(outage: Outage) -> dict:
    return {
        "id": outage.pk,
        "title": outage.title,
        "message": outage.message,
        "regions": list(outage.regions),
        "expected_end": outage.expected_end_at.isoformat() if outage.expected_end_at else None,
    }


def claim_notice(outage_id: int, conversation_id: int) -> bool:
    """True exactly once per (outage, conversation), and only while the outage is active."""
    if not Outage.objects.active().filter(pk=outage_id).exists():
        return False
    try:
        with transaction.atomic():
            OutageNotice.objects.create(outage_id=outage_id, conversation_id=conversation_id)
    except IntegrityError:
        return False  # already claimed (maybe by another worker a moment ago)
    return True
