"""Find a customer's CPF or CNPJ in message text; check digits are validated by python-stdnum only.

What counts as a document candidate (a "token" is letters/digits joined by single . / - marks):
- a punctuated CPF (`529.982.247-25`, `529982247-25`) or CNPJ (`11.222.333/0001-81`,
  `12.ABC.345/01DE-35`): clearly a document, so wrong check digits make it "invalid";
- a bare run of 11 or 14 digits (`52998224725`, `11222333000181`): a document too, unless it is
  shaped like a Brazilian phone number (`11987654321`, `08007771234`) or follows a word such as "protocolo";
- a bare 14-character alphanumeric CNPJ (`12ABC34501DE35`): taken only when valid, since codes
  of that shape are common.
Phone numbers with a country code, dates, amounts and other numbers never match.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from stdnum.br import cnpj, cpf

VALID = "valid"
INVALID = "invalid"

_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]+(?:[./-][0-9A-Za-z]+)*")
_CPF_PUNCTUATED = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")
_CNPJ_DIGITS_PUNCTUATED = re.compile(r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}")
# Letters are allowed in the first 12 characters; with letters only the full mask is "clearly" a CNPJ.
_CNPJ_ALNUM_PUNCTUATED = re.compile(
    r"[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2}", re.I
)
_CNPJ_ALNUM_BARE = re.compile(r"[0-9A-Z]{12}\d{2}", re.I)
# Brazil's area codes (DDD).
_DDD = "1[1-9]|2[12478]|3[1-57-8]|4[1-9]|5[1345]|6[1-9]|7[13-579]|8[1-9]|9[1-9]"
# 11 digits that dial in Brazil: area code + 9 + eight digits (mobile), 0 + area code + landline,
# or a 0300/0500/0800/0900 number.
_PHONE_11 = re.compile(rf"(?:{_DDD})9\d{{8}}|0(?:{_DDD})[2-5]\d{{7}}|0[3589]00\d{{7}}")
# Words after which a long number is a protocol, order or invoice number, not a document.
_NOT_A_DOCUMENT_BEFORE = re.compile(
    r"(\b(protocolo|protocol|chamado|pedido|ordem|os|o\.s|ticket|boleto|fatura|c[oó]digo)|n[º°]|#)"
    r"\W{0,3}$",
    re.I,
)
_SAYS_CPF = re.compile(r"\bcpf\b", re.I)


@dataclass(frozen=True)
class DocumentMatch:
    status: str  # VALID or INVALID
    kind: str  # "cpf" or "cnpj"
    value: str  # compact and upper case; an invalid value must never reach the CRM

    @property
    def valid(self) -> bool:
        return self.status == VALID


def compact(document: str) -> str:
    """Letters and digits only, upper case: the form stored on the customer and sent to the CRM."""
    return re.sub(r"[^0-9A-Za-z]", "", document or "").upper()


def validate(document: str) -> tuple[str, str] | None:
    """(kind, compact value) when `document` is a valid CPF or CNPJ, else None."""
    value = compact(document)
    if len(value) == 11 and cpf.is_valid(value):
        return "cpf", value
    if len(value) == 14 and cnpj.is_valid(value):
        return "cnpj", value
    return None


def _classify(token: str, before: str, text: str) -> DocumentMatch | None:
    punctuated = any(mark in token for mark in "./-")
    value = compact(token)
    if punctuated:
        if _CPF_PUNCTUATED.fullmatch(token):
            kind = "cpf"
        elif _CNPJ_DIGITS_PUNCTUATED.fullmatch(token) or _CNPJ_ALNUM_PUNCTUATED.fullmatch(token):
            kind = "cnpj"
        else:
            return None
        valid = (cpf if kind == "cpf" else cnpj).is_valid(value)
        return DocumentMatch(VALID if valid else INVALID, kind, value)
    if _NOT_A_DOCUMENT_BEFORE.search(before):
        return None
    if token.isdigit() and len(token) == 11:
        valid = cpf.is_valid(value)
        if _PHONE_11.fullmatch(token):
            # A phone number unless the customer says it is a CPF and the digits agree.
            return DocumentMatch(VALID, "cpf", value) if valid and _SAYS_CPF.search(text) else None
        return DocumentMatch(VALID if valid else INVALID, "cpf", value)
    if token.isdigit() and len(token) == 14:
        return DocumentMatch(VALID if cnpj.is_valid(value) else INVALID, "cnpj", value)
    if len(token) == 14 and _CNPJ_ALNUM_BARE.fullmatch(token) and cnpj.is_valid(value):
        return DocumentMatch(VALID, "cnpj", value)
    return None


def find_documents(text: str) -> list[DocumentMatch]:
    """Every document candidate in `text`, in order."""
    found = []
    for token in _TOKEN.finditer(text or ""):
        match = _classify(token.group(), text[max(0, token.start() - 20) : token.start()], text)
        if match is not None:
            found.append(match)
    return found


def find_document(texts: Iterable[str]) -> DocumentMatch | None:
    """The document a batch of messages gives: the last valid one, else the last invalid one."""
    matches = [match for text in texts for match in find_documents(text)]
    valid = [match for match in matches if match.valid]
    if valid:
        return valid[-1]
    return matches[-1] if matches else None
