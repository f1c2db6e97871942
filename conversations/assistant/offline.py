"""The assistant without an LLM (no OPENAI_API_KEY): deterministic Portuguese replies, useful in
the demo and in tests. The same transcript and context always give the same reply.

It answers the customer's latest batch (the user messages after the last assistant message):
greets on first contact, recognises connection down / slow / billing / "talk to a person",
handles the CPF/CNPJ status from the CustomerContext, and mentions an active outage. Through the
turn's tools (conversations.assistant.offline_actions) it hands over, lists the open invoices,
checks the connection and offers a ticket, and opens it when the customer answers "sim".
"""

import re
import unicodedata
from datetime import datetime

from django.utils import timezone

from conversations.assistant import media_input
from conversations.assistant import offline_actions as actions

GREETINGS = ("oi", "ola", "bom dia", "boa tarde", "boa noite", "e ai", "opa", "alo", "tudo bem")
# (topic, keywords) in the order the reply covers them; keywords are matched without accents.
TOPICS = (
    (
        "down",
        (
            "caiu",
            "sem internet",
            "sem conexao",
            "nao funciona",
            "nao esta funcionando",
            "nao conecta",
            "parou",
            "fora do ar",
            "sem sinal",
            "offline",
            "los vermelha",
        ),
    ),
    ("slow", ("lenta", "lento", "devagar", "travando", "oscilando", "instavel", "caindo")),
    (
        "billing",
        (
            "boleto",
            "fatura",
            "segunda via",
            "2a via",
            "2 via",
            "pagamento",
            "cobranca",
            "vencimento",
            "pix",
        ),
    ),
    ("human", ("atendente", "humano", "falar com alguem", "pessoa de verdade")),
)
ACCOUNT_TOPICS = {"down", "slow", "billing"}
# A CPF (000.000.000-00) or a CNPJ (00.000.000/0000-00, letters allowed before the check digits),
# punctuated or not: the customer just sent a document.
DOCUMENT_LIKE = re.compile(
    r"(?<!\w)(\d{3}\.?\d{3}\.?\d{3}-?\d{2}"
    r"|[0-9A-Z]{2}\.?[0-9A-Z]{3}\.?[0-9A-Z]{3}/?[0-9A-Z]{4}-?\d{2})(?!\w)"
)

GREETING = "Olá! Sou o assistente virtual do seu provedor de internet."
ASK_DOCUMENT = "Para eu consultar o seu cadastro, me informe o CPF ou CNPJ do titular do contrato."
INVALID_DOCUMENT = (
    "O CPF ou CNPJ que você enviou não parece estar correto. Pode conferir os números e enviar "
    "de novo, por favor?"
)
DOWN_STEPS = (
    "Vamos tentar resolver: desligue o roteador da tomada por 30 segundos e ligue de novo, e "
    "confira se os cabos estão bem encaixados. Se a luz LOS do equipamento estiver vermelha, "
    "o problema é na fibra."
)
DOWN_WITH_OUTAGE = (
    "Essa falha explica a sua conexão fora do ar; ela volta assim que o reparo terminar."
)
SLOW_STEPS = (
    "Para melhorar a velocidade: reinicie o roteador, teste com o aparelho perto dele ou por cabo "
    "e veja quantos dispositivos estão usando a internet ao mesmo tempo. Se puder, faça um teste "
    "de velocidade e me diga o resultado."
)
BILLING_UNKNOWN = "Posso enviar a segunda via das suas faturas em aberto por aqui."
CRM_DOWN = "No momento não consegui consultar o seu cadastro, mas sigo ajudando por aqui."
# Voice notes and photos the offline assistant cannot hear or see (media_input's placeholders).
COULD_NOT_LISTEN = "Não consegui ouvir o seu áudio. Pode escrever a sua mensagem, por favor?"
COULD_NOT_FETCH = (
    "Não consegui abrir o arquivo que você enviou. Pode enviar de novo ou escrever a sua "
    "mensagem, por favor?"
)
SAW_PHOTO = "Recebi a sua foto, obrigado! Pode me dizer o que ela mostra?"
WHAT_I_DO = "quedas de conexão, internet lenta, segunda via de boleto ou chamar um atendente"
WHAT_I_DO_WITHOUT_TOOLS = "quedas de conexão, internet lenta ou segunda via de boleto"


def offline_reply(request) -> str:
    """The reply text; "" when the conversation was handed over (the handoff message goes out)."""
    transcript = request.transcript or []
    batch = _latest_batch(transcript)
    text = _plain(" ".join(batch))
    session = getattr(request, "tools", None)
    topics = _topics(text)
    if "human" in topics:
        return actions.hand_over(session)
    offered = actions.offered_point(transcript)
    if offered and text.strip(" .!") in actions.YES:
        return actions.open_ticket(session, offered)
    context = request.context
    status = getattr(context, "document_status", "unknown") if context is not None else "unknown"
    outages = list(getattr(context, "active_outages", None) or [])
    crm_ok = bool(getattr(context, "crm_ok", True)) if context is not None else True
    masked = getattr(context, "masked_document", "") if context is not None else ""
    media_parts = _media_replies(batch)
    sent_document = bool(DOCUMENT_LIKE.search(" ".join(batch).upper()))
    if not topics and sent_document:
        # "529.982.247-25" answers our question: carry on with what they asked before it.
        topics = _earlier_topics(transcript, len(batch))

    parts = []
    if not any(m.get("role") == "assistant" for m in transcript):
        parts.append(GREETING)
    if len(batch) > 1:
        parts.append(f"Recebi as suas {len(batch)} mensagens.")
    if status == "invalid":
        parts.append(INVALID_DOCUMENT)
        if outages:
            parts.append(_outage_text(outages[0]))
        return " ".join(parts)
    if status == "known" and sent_document:
        if crm_ok:
            found = f"o cadastro do documento {masked}" if masked else "o seu cadastro"
            parts.append(f"Obrigado! Encontrei {found}.")
        else:
            parts.append(f"Obrigado pelo documento. {CRM_DOWN}")
    if outages and (not topics or {"down", "slow"} & set(topics)):
        parts.append(_outage_text(outages[0]))
    can_act = status == "known" and crm_ok
    if "down" in topics:
        if outages:
            parts.append(DOWN_WITH_OUTAGE)
        else:
            parts.append(DOWN_STEPS)
            if can_act:
                parts.append(actions.connection(session))
    if "slow" in topics and not outages:
        parts.append(SLOW_STEPS)
    if "billing" in topics:
        parts.append(actions.invoices(session) if can_act else BILLING_UNKNOWN)
    if status == "unknown" and ACCOUNT_TOPICS & set(topics):
        parts.append(ASK_DOCUMENT)
    parts.extend(media_parts)
    if not topics and not media_parts:
        known_now = status == "known" and sent_document
        # Tools off: nothing would call a person, so the list of what we do leaves it out.
        generic = _generic(batch, text, can_hand_over=session is not None)
        parts.append("Em que posso ajudar agora?" if known_now else generic)
    return " ".join(parts)


def _media_replies(batch: list[str]) -> list[str]:
    """What to say about the batch's voice notes and photos: asking to type what we could not
    hear or fetch, and what a photo shows (no LLM here to look at it). Once each."""
    replies = []
    for text in batch:
        if text.startswith((media_input.AUDIO_NOT_DOWNLOADED, media_input.AUDIO_NOT_TRANSCRIBED)):
            reply = COULD_NOT_LISTEN
        elif text.startswith(media_input.IMAGE_NOT_DOWNLOADED):
            reply = COULD_NOT_FETCH
        elif text.startswith(media_input.IMAGE):
            reply = SAW_PHOTO
        else:
            continue
        if reply not in replies:
            replies.append(reply)
    return replies


def _topics(text: str) -> list[str]:
    return [name for name, words in TOPICS if any(_has(text, word) for word in words)]


def _earlier_topics(transcript: list[dict], batch_size: int) -> list[str]:
    """Topics of the customer's latest earlier message that had one."""
    earlier = [m for m in transcript if m.get("role") == "user"][: -batch_size or None]
    for message in reversed(earlier):
        topics = _topics(_plain(media_input.content_text(message.get("content"))))
        if topics:
            return topics
    return []


def _latest_batch(transcript: list[dict]) -> list[str]:
    """The customer's messages after our last reply, oldest first."""
    batch = []
    for message in reversed(transcript):
        if message.get("role") != "user":
            break
        batch.append(media_input.content_text(message.get("content")).strip())
    return [text for text in reversed(batch) if text]


def _plain(text: str) -> str:
    """Lower case without accents, so "Não está" matches "nao esta"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def _generic(batch: list[str], text: str, can_hand_over: bool = True) -> str:
    what = WHAT_I_DO if can_hand_over else WHAT_I_DO_WITHOUT_TOOLS
    if not batch or _only_greeting(text):
        return f"Como posso ajudar? Posso ver {what}."
    words = batch[-1].split()
    snippet = " ".join(words[:8])[:60]
    if len(words) > 8 or len(snippet) < len(" ".join(words)):
        snippet += "…"
    return (
        f'Sobre a sua mensagem "{snippet}": posso ajudar com {what}. Pode me contar um pouco mais?'
    )


def _only_greeting(text: str) -> bool:
    rest = re.sub(r"[^\w\s]", " ", text)
    for greeting in sorted(GREETINGS, key=len, reverse=True):
        rest = re.sub(rf"(?<!\w){re.escape(greeting)}(?!\w)", " ", rest)
    return not rest.strip()


def _outage_text(outage: dict) -> str:
    title = str(outage.get("title") or "").strip().rstrip(".")
    message = str(outage.get("message") or "").strip()
    text = "Identificamos uma falha na rede da sua região"
    text += f": {title}." if title else "."
    if message:
        text += f" {message}" if message.endswith((".", "!", "?")) else f" {message}."
    when = _when(outage.get("expected_end"))
    if when:
        text += f" Previsão de normalização: {when}."
    return text


def _when(value) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.strftime("%d/%m às %H:%M")
    return str(value)
