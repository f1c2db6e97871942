"""RuntimeSettings: the one row of knobs staff tune live in the admin, with the validators that
keep typos out of it. A model of the conversations app (conversations.models re-exports it)."""

from django.core.exceptions import ValidationError
from django.core.validators import (
    RegexValidator,
)
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations import defaults
from conversations.runtime_settings_groups import (
    DeskSettings,
    MediaSettings,
    OperationsSettings,
    ToolSettings,
)
from conversations.runtime_validators import (  # noqa: F401 (migrations name them here)
    WHATSAPP_TEXT_MAX,
    between,
    max_chars,
    parse_llm_prices,
    validate_llm_prices,
    validate_notice_template,
)


class RuntimeSettings(MediaSettings, ToolSettings, OperationsSettings, DeskSettings):
    """The one row of knobs staff tune live in the admin; read through conversations.runtime.

    Bounds reject zero, negative and absurd values (usually a typo: ms typed as s, an extra zero);
    clean() checks the rules between fields. Blank texts mean "use the built-in default".
    """

    # CRM cache
    crm_cache_ttl_seconds = models.PositiveIntegerField(
        _("CRM cache TTL (s)"),
        default=defaults.CRM_CACHE_TTL_SECONDS,
        validators=between(1, 86400, "s"),
        help_text=_(
            "How long a customer's CRM data (installation points) is reused before asking "
            "the CRM again. Longer means faster replies but older data."
        ),
    )
    crm_negative_ttl_seconds = models.PositiveIntegerField(
        _("negative-result TTL (s)"),
        default=defaults.CRM_NEGATIVE_TTL_SECONDS,
        validators=between(1, 86400, "s"),
        help_text=_('How long a "customer not found" answer from the CRM is remembered.'),
    )
    crm_stale_ttl_seconds = models.PositiveIntegerField(
        _("stale-copy TTL (s)"),
        default=defaults.CRM_STALE_TTL_SECONDS,
        validators=between(1, 7 * 86400, "s"),
        help_text=_(
            "When the CRM is slow or down, an older copy up to this age is used instead. "
            "Must be at least the CRM cache TTL."
        ),
    )
    crm_timeout_seconds = models.PositiveIntegerField(
        _("CRM timeout (s)"),
        default=defaults.CRM_TIMEOUT_SECONDS,
        validators=between(1, 120, "s"),
        help_text=_("How long to wait for the CRM before answering without (or with older) data."),
    )
    # Conversation lock
    lock_ttl_seconds = models.PositiveIntegerField(
        _("conversation lock TTL (s)"),
        default=defaults.LOCK_TTL_SECONDS,
        validators=between(10, 3600, "s"),
        help_text=_(
            "A worker holds a conversation's lock while it answers and renews it every "
            "third of this time. If the worker dies, another one takes over after this time."
        ),
    )
    lock_wait_timeout_seconds = models.PositiveIntegerField(
        _("lock wait timeout (s)"),
        default=defaults.LOCK_WAIT_TIMEOUT_SECONDS,
        validators=between(1, 600, "s"),
        help_text=_(
            "Longest time code that must wait for a busy lock (e.g. a shared CRM lookup) "
            "keeps retrying before going on without it."
        ),
    )
    backoff_base_ms = models.PositiveIntegerField(
        _("backoff base (ms)"),
        default=defaults.BACKOFF_BASE_MS,
        validators=between(10, 10000, "ms"),
        help_text=_(
            "First pause between retries while waiting; each next pause doubles, up to the "
            "cap (100, 200, 400, 800, 1600, 2000, 2000... ms with the defaults)."
        ),
    )
    backoff_cap_ms = models.PositiveIntegerField(
        _("backoff cap (ms)"),
        default=defaults.BACKOFF_CAP_MS,
        validators=between(10, 60000, "ms"),
        help_text=_(
            "Longest pause between retries. Must be at least the base and at most the lock "
            "wait timeout."
        ),
    )
    # Turns
    debounce_quiet_ms = models.PositiveIntegerField(
        _("debounce quiet window (ms)"),
        default=defaults.DEBOUNCE_QUIET_MS,
        validators=between(100, 60000, "ms"),
        help_text=_(
            "Before answering, wait until the customer has stopped typing for this long, so "
            "several quick messages get one reply."
        ),
    )
    debounce_max_wait_ms = models.PositiveIntegerField(
        _("debounce max wait (ms)"),
        default=defaults.DEBOUNCE_MAX_WAIT_MS,
        validators=between(100, 120000, "ms"),
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
        validators=between(0, 10, ""),
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
        validators=[max_chars(20000, "longer instructions slow every reply down")],
        help_text=_(
            "The assistant's standing instructions (system prompt). The customer's data is "
            "added after them on every turn. Leave blank to restore the built-in text."
        ),
    )
    llm_timeout_seconds = models.PositiveIntegerField(
        _("LLM timeout (s)"),
        default=defaults.LLM_TIMEOUT_SECONDS,
        validators=between(1, 600, "s"),
        help_text=_(
            "Total time allowed for the assistant's answer, retries included. After it the "
            "fallback reply is sent and the conversation goes to a person."
        ),
    )
    history_window_messages = models.PositiveIntegerField(
        _("history window (messages)"),
        default=defaults.HISTORY_WINDOW_MESSAGES,
        validators=between(1, 200, ""),
        help_text=_("How many of the latest messages of the conversation the assistant reads."),
    )
    fallback_reply = models.TextField(
        _("fallback reply"),
        default=defaults.FALLBACK_REPLY,
        blank=True,
        validators=[max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages")],
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
            max_chars(WHATSAPP_TEXT_MAX, "WhatsApp refuses longer messages"),
            validate_notice_template,
        ],
        help_text=_(
            "Sent once per conversation when the customer is in the area of an active "
            "outage. {message} is replaced by the outage's message. Leave blank to restore the "
            "built-in text."
        ),
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
