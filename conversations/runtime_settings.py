"""RuntimeSettings: the one row of knobs staff tune live in the admin, with the validators that
keep typos out of it. A model of the conversations app (conversations.models re-exports it)."""

import string

from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations import defaults
from conversations.business_hours import (
    validate_business_hours,
    validate_handoff_closed_template,
)

# WhatsApp refuses text bodies longer than this.
WHATSAPP_TEXT_MAX = 4096


def _max_chars(limit: int, why: str) -> MaxLengthValidator:
    return MaxLengthValidator(limit, f"At most {limit} characters, please: {why}.")


def _between(low: int, high: int, unit: str) -> list:
    """Bounds for a runtime knob, with messages staff can act on."""
    unit = f" {unit}" if unit else ""
    return [
        MinValueValidator(low, f"Must be at least {low}{unit}."),
        MaxValueValidator(
            high, f"Must be at most {high}{unit}; a larger value is almost certainly a typo."
        ),
    ]


def validate_notice_template(value: str) -> None:
    """The outage notice may use only {message}; anything else would break sending the notice."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError:
        raise ValidationError(
            "Unbalanced braces: use {message} for the outage text and {{ or }} for a literal brace."
        ) from None
    unknown = sorted({name for name in fields if name not in defaults.OUTAGE_NOTICE_PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            "Unknown placeholder %(names)s: only {message} is available.",
            params={"names": ", ".join("{" + name + "}" for name in unknown)},
        )


def parse_llm_prices(text: str) -> dict[str, tuple[float, float, float]]:
    """ "model input cached_input output" per line -> {model: (input, cached, output)} in USD per
    million tokens. Raises ValidationError naming the first bad line."""
    prices = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = tuple(float(part) for part in parts[1:])
        except ValueError:
            values = ()
        if len(values) != 3 or any(not 0 <= value < 10_000 for value in values):
            raise ValidationError(
                _(
                    "Line %(number)s: write the model name and three prices (input, cached "
                    "input, output, in USD per million tokens), e.g. gpt-5-mini 0.25 0.025 2.00."
                ),
                params={"number": number},
            )
        prices[parts[0]] = values
    return prices


def validate_llm_prices(value: str) -> None:
    parse_llm_prices(value)


def _hours_field(day: str, label) -> models.CharField:
    return models.CharField(
        label,
        max_length=11,
        blank=True,
        default=defaults.BUSINESS_HOURS[day],
        validators=[validate_business_hours],
        help_text=_('When staff answer, e.g. "08:00-18:00" (São Paulo time); blank: closed.'),
    )


class RuntimeSettings(models.Model):
    """The one row of knobs staff tune live in the admin; read through conversations.runtime.

    Bounds reject zero, negative and absurd values (usually a typo: ms typed as s, an extra zero);
    clean() checks the rules between fields. Blank texts mean "use the built-in default".
    """

    # CRM cache
    crm_cache_ttl_seconds = models.PositiveIntegerField(
        _("CRM cache TTL (s)"),
        default=defaults.CRM_CACHE_TTL_SECONDS,
        validators=_between(1, 86400, "s"),
        help_text=_(
            "How long a customer's CRM data (installation points) is reused before asking "
            "the CRM again. Longer means faster replies but older data."
        ),
    )
    crm_negative_ttl_seconds = models.PositiveIntegerField(
        _("negative-result TTL (s)"),
        default=defaults.CRM_NEGATIVE_TTL_SECONDS,
        validators=_between(1, 86400, "s"),
        help_text=_('How long a "customer not found" answer from the CRM is remembered.'),
    )
    crm_stale_ttl_seconds = models.PositiveIntegerField(
        _("stale-copy TTL (s)"),
        default=defaults.CRM_STALE_TTL_SECONDS,
        validators=_between(1, 7 * 86400, "s"),
        help_text=_(
            "When the CRM is slow or down, an older copy up to this age is used instead. "
            "Must be at least the CRM cache TTL."
        ),
    )
    crm_timeout_seconds = models.PositiveIntegerField(
        _("CRM timeout (s)"),
        default=defaults.CRM_TIMEOUT_SECONDS,
        validators=_between(1, 120, "s"),
        help_text=_("How long to wait for the CRM before answering without (or with older) data."),
    )
    # Conversation lock
    lock_ttl_seconds = models.PositiveIntegerField(
        _("conversation lock TTL (s)"),
        default=defaults.LOCK_TTL_SECONDS,
        validators=_between(10, 3600, "s"),
        help_text=_(
            "A worker holds a conversation's lock while it answers and renews it every "
            "third of this time. If the worker dies, another one takes over after this time."
        ),
    )
    lock_wait_timeout_seconds = models.PositiveIntegerField(
        _("lock wait timeout (s)"),
        default=defaults.LOCK_WAIT_TIMEOUT_SECONDS,
        validators=_between(1, 600, "s"),
        help_text=_(
            "Longest time code that must wait for a busy lock (e.g. a shared CRM lookup) "
            "keeps retrying before going on without it."
        ),
    )
    backoff_base_ms = models.PositiveIntegerField(
        _("backoff base (ms)"),
        default=defaults.BACKOFF_BASE_MS,
        validators=_between(10, 10000, "ms"),
        help_text=_(
            "First pause between retries while waiting; each next pause doubles, up to the "
            "cap (100, 200, 400, 800, 1600, 2000, 2000... ms with the defaults)."
        ),
    )
    backoff_cap_ms = models.PositiveIntegerField(
        _("backoff cap (ms)"),
        default=defaults.BACKOFF_CAP_MS,
        validators=_between(10, 60000, "ms"),
        help_text=_(
            "Longest pause between retries. Must be at least the base and at most the lock "
            "wait timeout."
        ),
    )
    # Turns
    debounce_quiet_ms = models.PositiveIntegerField(
        _("debounce quiet window (ms)"),
        default=defaults.DEBOUNCE_QUIET_MS,
        validators=_between(100, 60000, "ms"),
        help_text=_(
            "Before answering, wait until the customer has stopped typing for this long, so "
            "several quick messages get one reply."
        ),
    )
    debounce_max_wait_ms = models.PositiveIntegerField(
        _("debounce max wait (ms)"),
        default=defaults.DEBOUNCE_MAX_WAIT_MS,
        validators=_between(100, 120000, "ms"),
        help_text=_(
            "Never wait longer than this for the customer to stop typing. Must be at least "
            "the quiet window."
        ),
    )
    supersede_enabled = models.BooleanField(
        _("supersede unsent replies"),
        default=defaults.SUPERSEDE_ENABLED,
        help_text=_(
            "If the customer writes again while a reply is being prepared, throw the unsent "
            "reply away and prepare a new one that covers the new messages too."
        ),
    )
    supersede_cap = models.PositiveIntegerField(
        _("supersede cap per turn"),
        default=defaults.SUPERSEDE_CAP,
        validators=_between(0, 10, ""),
        help_text=_(
            "At most this many replies are thrown away per turn, so a customer who keeps "
            "typing still gets an answer."
        ),
    )
    # Assistant
    llm_model = models.CharField(
        _("LLM model"),
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(
                r"^\S*$",
                "A model name has no spaces (for example gpt-5-mini); leave it blank for the default.",
            )
        ],
        help_text=_(
            "Name of the OpenAI model. Leave blank to use the server's OPENAI_MODEL setting."
        ),
    )
    assistant_instructions = models.TextField(
        _("assistant instructions"),
        default=defaults.ASSISTANT_INSTRUCTIONS,
        blank=True,
        validators=[_max_chars(20000, "longer instructions slow every reply down")],
        help_text=_(
            "The assistant's standing instructions (system prompt). The customer's data is "
            "added after them on every turn. Leave blank to restore the built-in text."
        ),
    )
    llm_timeout_seconds = models.PositiveIntegerField(
        _("LLM timeout (s)"),
        default=defaults.LLM_TIMEOUT_SECONDS,
        validators=_between(1, 600, "s"),
        help_text=_(
            "Total time allowed for the assistant's answer, retries included. After it the "
            "fallback reply is sent and the conversation goes to a person."
        ),
    )
    history_window_messages = models.PositiveIntegerField(
        _("history window (messages)"),
        default=defaults.HISTORY_WINDOW_MESSAGES,
        validators=_between(1, 200, ""),
        help_text=_("How many of the latest messages of the conversation the assistant reads."),
    )
    # Voice notes and photos (staff-facing texts translated: gettext_lazy, English msgids)
    media_audio_max_mb = models.PositiveIntegerField(
        _("largest voice note (MB)"),
        default=defaults.MEDIA_AUDIO_MAX_MB,
        validators=_between(1, 16, "MB"),
        help_text=_("Larger audio files are not downloaded (WhatsApp's own limit is 16 MB)."),
    )
    media_image_max_mb = models.PositiveIntegerField(
        _("largest photo (MB)"),
        default=defaults.MEDIA_IMAGE_MAX_MB,
        validators=_between(1, 5, "MB"),
        help_text=_("Larger images are not downloaded (WhatsApp's own limit is 5 MB)."),
    )
    media_timeout_seconds = models.PositiveIntegerField(
        _("media timeout (s)"),
        default=defaults.MEDIA_TIMEOUT_SECONDS,
        validators=_between(1, 120, "s"),
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
    fallback_reply = models.TextField(
        _("fallback reply"),
        default=defaults.FALLBACK_REPLY,
        blank=True,
        validators=[_max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages")],
        help_text=_(
            "Sent once when the assistant cannot answer; the conversation is then handed to "
            "a person. Leave blank to restore the built-in text."
        ),
    )
    outage_notice_template = models.TextField(
        _("outage notice"),
        default=defaults.OUTAGE_NOTICE_TEMPLATE,
        blank=True,
        validators=[
            _max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages"),
            validate_notice_template,
        ],
        help_text=_(
            "Sent once per conversation when the customer is in the area of an active "
            "outage. {message} is replaced by the outage's message. Leave blank to restore the "
            "built-in text."
        ),
    )
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
        validators=[_max_chars(2000, "the after-hours text is added to it")],
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
            _max_chars(1000, "it follows the handoff message"),
            validate_handoff_closed_template,
        ],
        help_text=_(
            "Added to the handoff message outside business hours. {when} is replaced by when "
            'the staff are back (e.g. "amanhã às 08:00"). Leave blank to restore the built-in '
            "text."
        ),
    )
    hours_monday = _hours_field("monday", _("hours on Monday"))
    hours_tuesday = _hours_field("tuesday", _("hours on Tuesday"))
    hours_wednesday = _hours_field("wednesday", _("hours on Wednesday"))
    hours_thursday = _hours_field("thursday", _("hours on Thursday"))
    hours_friday = _hours_field("friday", _("hours on Friday"))
    hours_saturday = _hours_field("saturday", _("hours on Saturday"))
    hours_sunday = _hours_field("sunday", _("hours on Sunday"))
    # Retention (LGPD)
    content_retention_days = models.PositiveIntegerField(
        _("keep message content (days)"),
        default=defaults.CONTENT_RETENTION_DAYS,
        validators=_between(1, 3650, "days"),
        help_text=_(
            "Texts, transcripts and raw payloads older than this are erased by the workers' "
            "retention pass; conversations, turns and figures stay."
        ),
    )
    media_retention_days = models.PositiveIntegerField(
        _("keep media files (days)"),
        default=defaults.MEDIA_RETENTION_DAYS,
        validators=_between(1, 3650, "days"),
        help_text=_(
            "Images, voice notes and documents older than this are deleted from the storage. At "
            "most the content retention."
        ),
    )
    # Staff desk (issue 13): auto-resolve and what the customer is told on take over/resolve.
    auto_resolve_hours = models.PositiveIntegerField(
        _("auto-resolve after (hours)"),
        default=24,
        validators=_between(1, 720, "h"),
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
        validators=[_max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages")],
        help_text=_("Sent to the customer when staff take over. Empty: nothing is sent."),
    )
    resolve_message = models.TextField(
        _("message on resolve"),
        blank=True,
        validators=[_max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages")],
        help_text=_("Sent to the customer when staff resolve. Empty: nothing is sent."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("runtime settings")
        verbose_name_plural = _("runtime settings")

    def __str__(self):
        return str(_("Runtime settings"))

    def clean(self):
        errors = {}

        def need(field, ok, message):
            if ok is False:
                errors.setdefault(field, []).append(message)

        def le(a, b):
            # None when either value already failed its own validation.
            return None if a is None or b is None else a <= b

        need(
            "backoff_cap_ms",
            le(self.backoff_base_ms, self.backoff_cap_ms),
            f"The backoff cap must be at least the backoff base ({self.backoff_base_ms} ms).",
        )
        need(
            "backoff_cap_ms",
            le(
                self.backoff_cap_ms,
                None
                if self.lock_wait_timeout_seconds is None
                else self.lock_wait_timeout_seconds * 1000,
            ),
            "The backoff cap must not be longer than the lock wait timeout "
            f"({self.lock_wait_timeout_seconds} s).",
        )
        need(
            "debounce_max_wait_ms",
            le(self.debounce_quiet_ms, self.debounce_max_wait_ms),
            "The debounce max wait must be at least the quiet window "
            f"({self.debounce_quiet_ms} ms).",
        )
        need(
            "crm_stale_ttl_seconds",
            le(self.crm_cache_ttl_seconds, self.crm_stale_ttl_seconds),
            "The stale-copy TTL must be at least the CRM cache TTL "
            f"({self.crm_cache_ttl_seconds} s).",
        )
        need(
            "media_retention_days",
            le(self.media_retention_days, self.content_retention_days),
            "Media cannot be kept longer than the message content "
            f"({self.content_retention_days} days).",
        )
        if errors:
            raise ValidationError(errors)
