"""The staff desk's own records: private notes on a conversation and canned replies. Models of
the conversations app (conversations.models re-exports them)."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations.runtime_validators import WHATSAPP_TEXT_MAX  # what WhatsApp accepts

NOTE_MAX = 4000
# The placeholders a canned reply may use, filled from the conversation when staff pick it.
CANNED_PLACEHOLDERS = ("nome",)


class StaffNote(models.Model):
    """A private note staff leave on a conversation: shown in yellow, never sent to WhatsApp.
    A model of its own, not a Message kind, so nothing that sends or reads the transcript for
    the assistant can ever pick one up."""

    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="notes",
        verbose_name=_("conversation"),
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("author"),
    )
    text = models.TextField(_("text"), validators=[MaxLengthValidator(NOTE_MAX)])
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("private note")
        verbose_name_plural = _("private notes")
        ordering = ["created_at", "id"]

    def __str__(self):
        return _("Note %(id)s") % {"id": self.pk}


def validate_canned_text(value: str) -> None:
    unknown = sorted(set(re.findall(r"\{(\w*)\}", value)) - set(CANNED_PLACEHOLDERS))
    if unknown:
        raise ValidationError(
            _("Unknown placeholder %(names)s: only {nome} is available."),
            params={"names": ", ".join("{" + name + "}" for name in unknown)},
        )


class CannedReply(models.Model):
    """A ready answer staff pick in the composer by typing / and its shortcut."""

    shortcut = models.CharField(
        _("shortcut"),
        max_length=32,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9_-]+$", _("Lower-case letters, digits, - and _ only (no spaces or /).")
            )
        ],
        help_text=_("Typed after / in the composer, e.g. boleto."),
    )
    text = models.TextField(
        _("text"),
        validators=[MaxLengthValidator(WHATSAPP_TEXT_MAX), validate_canned_text],
        help_text=_("{nome} is replaced by the customer's name."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["shortcut"]

    def __str__(self):
        return f"/{self.shortcut}"

    def render(self, name: str) -> str:
        return self.text.replace("{nome}", name or "")
