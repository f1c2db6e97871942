"""Find the person an LGPD request names: by WhatsApp number (with or without the ninth digit,
punctuated or not) or by CPF/CNPJ (with or without punctuation)."""

from django.db.models import Q

from conversations.models import Customer
from conversations.phone import normalise_wa_id
from crm_gateway.documents import validate


class NotAPerson(ValueError):
    """The request names neither a phone number nor a valid CPF/CNPJ."""


def find_customers(number_or_document: str) -> list[Customer]:
    """Every customer with that number or that document (one CPF may write from two numbers).

    An empty list: nobody. Raises NotAPerson when the text is neither a number nor a document.
    """
    text = (number_or_document or "").strip()
    match = Q(pk__in=[])
    understood = False
    document = validate(text)
    if document is not None:
        understood = True
        match |= Q(document=document[1])
    try:
        match |= Q(wa_id=normalise_wa_id(text))
        understood = True
    except ValueError:
        pass
    if not understood:
        raise NotAPerson(
            "Not a WhatsApp number (8-15 digits) or a valid CPF/CNPJ: nothing was looked up."
        )
    return list(Customer.objects.filter(match).order_by("pk"))
