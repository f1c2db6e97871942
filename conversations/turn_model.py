"""Turn: one run of the engine over a batch, with its timings and what the assistant spent. A model
of the conversations app (conversations.models re-exports it)."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Turn(models.Model):
    """One run of the engine over a batch of inbound messages, with its timings."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("Running")
        ANSWERED = "answered", _("Answered")
        FALLBACK = "fallback", _("Fallback reply")
        SUPERSEDED = "superseded", _("Superseded")
        HUMAN = "human", _("Handed to a person")
        LOST_LOCK = "lost_lock", _("Lost lock")

    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="turns",
        verbose_name=_("conversation"),
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.RUNNING
    )
    batch_size = models.PositiveIntegerField(_("batch size"), default=0)
    supersede_count = models.PositiveIntegerField(_("superseded replies"), default=0)
    lock_wait_ms = models.PositiveIntegerField(_("lock wait (ms)"), default=0)
    debounce_wait_ms = models.PositiveIntegerField(_("debounce wait (ms)"), default=0)
    crm_ms = models.PositiveIntegerField(_("CRM (ms)"), default=0)
    llm_ms = models.PositiveIntegerField(_("LLM (ms)"), default=0)
    total_ms = models.PositiveIntegerField(_("total (ms)"), default=0)
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    # The assistant's tool calls: [{"name", "ok", "ms"}], and the LLM's token usage (all rounds).
    tool_calls = models.JSONField(_("tool calls"), default=list, blank=True)
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    cached_input_tokens = models.PositiveIntegerField(_("cached input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    transcription_ms = models.PositiveIntegerField(_("transcription (ms)"), default=0)
    # The transcription API's usage summed over the turn's voice notes, as it reports it:
    # {"input_tokens", "audio_tokens", "output_tokens"} (token-billed models) and/or {"seconds"}.
    transcription_usage = models.JSONField(_("transcription usage"), default=dict, blank=True)
    # From the oldest message of the batch stored to the reply sent (null: nothing was sent).
    first_reply_ms = models.PositiveIntegerField(_("first reply (ms)"), null=True, blank=True)

    class Meta:
        verbose_name = _("turn")
        verbose_name_plural = _("turns")
        indexes = [
            models.Index(fields=["conversation", "-started_at"], name="turn_conversation_started"),
            # The dashboard's periods, and the turns in flight (issue 14).
            models.Index(fields=["started_at"], name="turn_started"),
            models.Index(
                fields=["started_at"],
                name="turn_running",
                condition=Q(outcome="running"),
            ),
        ]
        permissions = [("view_dashboard", _("Can view the dashboard"))]

    def __str__(self):
        return _("Turn %(id)s (%(outcome)s)") % {
            "id": self.pk,
            "outcome": self.get_outcome_display(),
        }
