"""Groups of runtime settings, each an abstract model that RuntimeSettings (one row, one table)
inherits: voice notes and photos, the assistant's tools and handoff, the dashboard's prices and
the retention, the staff desk. Kept apart so each feature's knobs read together."""

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations import defaults
from conversations.business_hours import validate_handoff_closed_template
from conversations.runtime_validators import (
    WHATSAPP_TEXT_MAX,
    between,
    hours_field,
    max_chars,
    validate_llm_prices,
)


class MediaSettings(models.Model):
    # Voice notes and photos (staff-facing texts translated: gettext_lazy, English msgids)
    media_audio_max_mb = models.PositiveIntegerField(
        _("largest voice note (MB)"),
        default=defaults.MEDIA_AUDIO_MAX_MB,
        validators=between(1, 16, "MB"),
        help_text=_("Larger audio files are not downloaded (WhatsApp's own limit is 16 MB)."),
    )
    media_image_max_mb = models.PositiveIntegerField(
        _("largest photo (MB)"),
        default=defaults.MEDIA_IMAGE_MAX_MB,
        validators=between(1, 5, "MB"),
        help_text=_("Larger images are not downloaded (WhatsApp's own limit is 5 MB)."),
    )
    media_timeout_seconds = models.PositiveIntegerField(
        _("media timeout (s)"),
        default=defaults.MEDIA_TIMEOUT_SECONDS,
        validators=between(1, 120, "s"),
        help_text=_(
            "Total time a turn gives to downloading its voice notes and photos and transcribing "
            "the voice notes, retries included. It runs while the CRM is asked, before the reply."
        ),
    )
    transcription_model = models.CharField(
        _("transcription model"),
        max_length=100,
        default=defaults.TRANSCRIPTION_MODEL,
        blank=True,
        validators=[
            RegexValidator(
                r"^\S*$",
                _(
                    "A model name has no spaces (for example gpt-4o-mini-transcribe); leave it "
                    "blank for the default."
                ),
            )
        ],
        help_text=_(
            "OpenAI model that turns voice notes into text. Leave blank for gpt-4o-mini-transcribe."
        ),
    )
    images_enabled = models.BooleanField(
        _("show photos to the assistant"),
        default=defaults.IMAGES_ENABLED,
        help_text=_(
            "Send the photos of the customer's latest messages to the model. Each photo costs "
            "tokens; when off, the model reads only the caption."
        ),
    )
    image_detail = models.CharField(
        _("photo detail"),
        max_length=4,
        default=defaults.IMAGE_DETAIL,
        choices=[("low", _("low (cheapest)")), ("high", _("high")), ("auto", _("auto"))],
        help_text=_(
            "How closely the model looks at each photo: low costs a small fixed number of tokens "
            "per photo, high many more."
        ),
    )

    class Meta:
        abstract = True


class ToolSettings(models.Model):
    # Tools and handoff (issue 12)
    assistant_tools_enabled = models.BooleanField(
        _("assistant tools"),
        default=defaults.ASSISTANT_TOOLS_ENABLED,
        help_text=_(
            "Let the assistant act: hand over to a person, show points, connection and "
            "invoices, open tickets. Off: it only answers in text."
        ),
    )
    handoff_message = models.TextField(
        _("handoff message"),
        default=defaults.HANDOFF_MESSAGE,
        blank=True,
        validators=[max_chars(2000, "the after-hours text is added to it")],
        help_text=_(
            "Sent once when the assistant hands a conversation to the staff. Leave blank to "
            "restore the built-in text."
        ),
    )
    handoff_closed_template = models.TextField(
        _("after-hours text"),
        default=defaults.HANDOFF_CLOSED_TEMPLATE,
        blank=True,
        validators=[
            max_chars(1000, "it follows the handoff message"),
            validate_handoff_closed_template,
        ],
        help_text=_(
            "Added to the handoff message outside business hours. {when} is replaced by when "
            'the staff are back (e.g. "amanhã às 08:00"). Leave blank to restore the built-in '
            "text."
        ),
    )
    hours_monday = hours_field("monday", _("hours on Monday"))
    hours_tuesday = hours_field("tuesday", _("hours on Tuesday"))
    hours_wednesday = hours_field("wednesday", _("hours on Wednesday"))
    hours_thursday = hours_field("thursday", _("hours on Thursday"))
    hours_friday = hours_field("friday", _("hours on Friday"))
    hours_saturday = hours_field("saturday", _("hours on Saturday"))
    hours_sunday = hours_field("sunday", _("hours on Sunday"))

    class Meta:
        abstract = True


class OperationsSettings(models.Model):
    # Operations (issue 14): what the dashboard's token cost estimate multiplies by.
    llm_prices = models.TextField(
        _("LLM prices"),
        default=defaults.LLM_PRICES,
        blank=True,
        validators=[validate_llm_prices],
        help_text=_(
            "One model per line: name, then USD per million input, cached input and output "
            'tokens, e.g. "gpt-5-mini 0.25 0.025 2.00". The dashboard estimates the cost of the '
            "tokens with the prices of the model in use."
        ),
    )
    # Retention (LGPD)
    content_retention_days = models.PositiveIntegerField(
        _("keep message content (days)"),
        default=defaults.CONTENT_RETENTION_DAYS,
        validators=between(1, 3650, "days"),
        help_text=_(
            "Texts, transcripts and raw payloads older than this are erased by the workers' "
            "retention pass; conversations, turns and figures stay."
        ),
    )
    media_retention_days = models.PositiveIntegerField(
        _("keep media files (days)"),
        default=defaults.MEDIA_RETENTION_DAYS,
        validators=between(1, 3650, "days"),
        help_text=_(
            "Images, voice notes and documents older than this are deleted from the storage. At "
            "most the content retention."
        ),
    )

    class Meta:
        abstract = True


class DeskSettings(models.Model):
    # Staff desk (issue 13): auto-resolve and what the customer is told on take over/resolve.
    auto_resolve_hours = models.PositiveIntegerField(
        _("auto-resolve after (hours)"),
        default=24,
        validators=between(1, 720, "h"),
        help_text=_(
            "An open conversation with no message for this many hours is resolved by the "
            "worker's periodic pass."
        ),
    )
    auto_resolve_waiting = models.BooleanField(
        _("auto-resolve conversations waiting for a person"),
        default=False,
        help_text=_(
            "Off: a conversation handed over and not yet answered by staff is never resolved "
            "by the clock."
        ),
    )
    take_over_message = models.TextField(
        _("message on take over"),
        blank=True,
        validators=[max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages")],
        help_text=_("Sent to the customer when staff take over. Empty: nothing is sent."),
    )
    resolve_message = models.TextField(
        _("message on resolve"),
        blank=True,
        validators=[max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages")],
        help_text=_("Sent to the customer when staff resolve. Empty: nothing is sent."),
    )

    class Meta:
        abstract = True
