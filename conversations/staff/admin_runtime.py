"""The runtime settings page: one row of knobs staff tune live (conversations.runtime serves them to
every worker within seconds). Imported by conversations/admin.py.

Who changed what and when is Django's admin log (LogEntry): every save records the user and
the changed fields, shown under "History".
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from conversations.models import RuntimeSettings
from conversations.runtime import get_or_create_settings_row, reset_runtime_cache


@admin.register(RuntimeSettings)
class RuntimeSettingsAdmin(admin.ModelAdmin):
    fieldsets = (
        (
            _("CRM cache"),
            {
                "description": _(
                    "How long answers from the CRM are reused, and how long we wait for it."
                ),
                "fields": (
                    "crm_cache_ttl_seconds",
                    "crm_negative_ttl_seconds",
                    "crm_stale_ttl_seconds",
                    "crm_timeout_seconds",
                ),
            },
        ),
        (
            _("Conversation lock"),
            {
                "description": _(
                    "Only one worker answers a conversation at a time. These control how long "
                    "it may hold it and how code that waits for a busy lock retries."
                ),
                "fields": (
                    "lock_ttl_seconds",
                    "lock_wait_timeout_seconds",
                    "backoff_base_ms",
                    "backoff_cap_ms",
                ),
            },
        ),
        (
            _("Turns"),
            {
                "description": _("How messages sent in quick succession are answered together."),
                "fields": (
                    "debounce_quiet_ms",
                    "debounce_max_wait_ms",
                    "supersede_enabled",
                    "supersede_cap",
                ),
            },
        ),
        (
            _("Assistant"),
            {
                "fields": (
                    "llm_model",
                    "llm_timeout_seconds",
                    "history_window_messages",
                    "assistant_instructions",
                ),
            },
        ),
        (
            _("Voice notes and photos"),
            {
                "description": _(
                    "How customers' voice notes and photos are fetched from WhatsApp, "
                    "transcribed and shown to the assistant."
                ),
                "fields": (
                    "media_audio_max_mb",
                    "media_image_max_mb",
                    "media_timeout_seconds",
                    "transcription_model",
                    "images_enabled",
                    "image_detail",
                ),
            },
        ),
        (
            _("Tools and handoff"),
            {
                "description": _(
                    "What the assistant may do, and what the customer is told when it hands the "
                    "conversation to the staff (with their hours, São Paulo time)."
                ),
                "fields": (
                    "assistant_tools_enabled",
                    "handoff_message",
                    "handoff_closed_template",
                    "hours_monday",
                    "hours_tuesday",
                    "hours_wednesday",
                    "hours_thursday",
                    "hours_friday",
                    "hours_saturday",
                    "hours_sunday",
                ),
            },
        ),
        (
            _("Texts"),
            {
                "description": _("Messages sent to customers as they are written here."),
                "fields": ("fallback_reply", "outage_notice_template", "updated_at"),
            },
        ),
        (
            _("Dashboard"),
            {
                "description": _("What the dashboard's cost estimate of the LLM tokens uses."),
                "fields": ("llm_prices",),
            },
        ),
        (
            _("Retention (LGPD)"),
            {
                "description": _(
                    "How long customers' messages and media are kept. The workers erase older "
                    "ones in small batches; conversations and figures stay."
                ),
                "fields": ("content_retention_days", "media_retention_days"),
            },
        ),
        (
            _("Staff desk"),
            {
                "description": _(
                    "Auto-resolve of quiet conversations, and what the customer is told when "
                    "staff take over or resolve (empty: nothing is sent)."
                ),
                "fields": (
                    "auto_resolve_hours",
                    "auto_resolve_waiting",
                    "take_over_message",
                    "resolve_message",
                ),
            },
        ),
    )
    readonly_fields = ("updated_at",)
    save_on_top = True

    def has_add_permission(self, request):
        return not RuntimeSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """There is one row: the list goes straight to it (creating it with the defaults)."""
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # the usual 403
        row = get_or_create_settings_row()
        return redirect(reverse("admin:conversations_runtimesettings_change", args=[row.pk]))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        for name, field in form.base_fields.items():
            if isinstance(field, forms.IntegerField):
                # The model's bounds and messages ("Must be at least 10 s.") instead of the
                # generic ">= 0" of a positive integer field, also for negative numbers.
                field.validators = list(RuntimeSettings._meta.get_field(name).validators)
        if "llm_model" in form.base_fields:
            form.base_fields["llm_model"].help_text = _(
                "Name of the OpenAI model. Leave blank to use the server's OPENAI_MODEL setting "
                "(now %(model)r)."
            ) % {"model": settings.OPENAI_MODEL}
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # This process sees the change at once; the others within conversations.runtime's interval.
        reset_runtime_cache()
