"""The admin for support staff: conversations they take over and hand back, and a message log
nobody can edit. Customers with their whole history: conversations.staff.admin_customers; the runtime
knobs: conversations.staff.admin_runtime (conversations/admin.py imports all three). Lists never show
a full number or document."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation, Message, Turn
from conversations.staff import desk_actions
from conversations.staff.admin_customers import short_datetime


class ReadOnlyInline(admin.TabularInline):
    """History is never edited, added or deleted in the admin, not even by superusers."""

    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = (
        "id",
        "started",
        "outcome",
        "batch_size",
        "supersede_count",
        "lock_wait_ms",
        "debounce_wait_ms",
        "crm_ms",
        "llm_ms",
        "total_ms",
        "detail",
        "answered",
        "tools",
        "tokens",
    )
    ordering = ("started_at", "id")
    verbose_name_plural = _("turns (timings in ms)")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("messages")

    @admin.display(description=_("started"))
    def started(self, obj):
        return short_datetime(obj.started_at)

    @admin.display(description=_("answered → sent"))
    def answered(self, obj):
        inbound = [m.pk for m in obj.messages.all() if m.direction == Message.Direction.INBOUND]
        outbound = [
            f"#{m.pk} ({m.get_kind_display()})"
            for m in obj.messages.all()
            if m.direction == Message.Direction.OUTBOUND
        ]
        answered = ", ".join(f"#{pk}" for pk in inbound) or "-"
        return f"{answered} → {', '.join(outbound) or '-'}"

    @admin.display(description=_("tool calls"))
    def tools(self, obj):
        """Each call as "name ok|error (ms)", e.g. "open_ticket ok (210 ms)"."""
        calls = [
            f"{c.get('name')} {_('ok') if c.get('ok') else _('error')} ({c.get('ms', 0)} ms)"
            for c in obj.tool_calls or []
            if isinstance(c, dict)
        ]
        return "; ".join(calls) or "-"

    @admin.display(description=_("tokens (input / cached / output)"))
    def tokens(self, obj):
        return f"{obj.input_tokens} / {obj.cached_input_tokens} / {obj.output_tokens}"


class MessageInline(ReadOnlyInline):
    model = Message
    fields = (
        "id",
        "created",
        "direction",
        "type",
        "text",
        "state",
        "delivery_status",
        "kind",
        "turn",
    )
    ordering = ("created_at", "id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("turn").defer("raw")

    @admin.display(description=_("created"))
    def created(self, obj):
        return short_datetime(obj.created_at)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "customer",
        "status",
        "handler",
        "assigned_to",
        "handoff_reason",
        "updated",
    )
    list_filter = ("status", "handler", "updated_at")
    list_select_related = ("customer", "assigned_to")
    search_fields = ("customer__profile_name", "customer__wa_id", "handoff_reason")
    ordering = ("-updated_at",)
    readonly_fields = (
        "customer",
        "status",
        "handler",
        "handoff_reason",
        "handoff_source",
        "handoff_at",
        "created_at",
        "updated_at",
        "last_inbound_at",
        "closed_at",
        "assigned_to",
        "first_staff_reply_at",
        "closed_by",
    )
    inlines = [TurnInline, MessageInline]

    @admin.display(description=_("updated"), ordering="updated_at")
    def updated(self, conversation):
        return short_datetime(conversation.updated_at)

    actions = ["take_over", "hand_back", "close"]

    def has_add_permission(self, request):
        return False  # conversations start when a customer writes

    def get_urls(self):
        reply = path(
            "<path:object_id>/reply/",
            self.admin_site.admin_view(self.staff_reply_view),
            name="conversations_conversation_reply",
        )
        return [reply, *super().get_urls()]

    def staff_reply_view(self, request, object_id):
        """A person answers a conversation they took over; it goes out through the sender."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        conversation = self.get_object(request, object_id)
        if conversation is None:
            raise Http404
        if not self.has_change_permission(request, conversation):
            raise PermissionDenied
        back = redirect("admin:conversations_conversation_change", conversation.pk)
        try:
            sent = desk_actions.reply(conversation, request.user, request.POST.get("text", ""))
        except desk_actions.DeskRefusal as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return back
        self.log_change(request, conversation, f"Sent a staff reply (message #{sent.pk})")
        self.message_user(request, _("Reply sent."))
        return back

    def _each(self, request, queryset, action, done: str, log: str) -> None:
        """Apply a desk action to each selected conversation; refusals are counted, not fatal."""
        changed = 0
        for conversation in queryset.select_related("customer"):
            try:
                action(conversation, request.user)
            except desk_actions.DeskRefusal:
                continue
            changed += 1
            self.log_change(request, conversation, log)
        self.message_user(request, done % {"count": changed})

    @admin.action(
        description=_("Take over (a person answers, the assistant stays silent)"),
        permissions=["change"],
    )
    def take_over(self, request, queryset):
        targets = queryset.exclude(handler=Conversation.Handler.HUMAN)
        self._each(
            request,
            targets,
            desk_actions.take_over,
            _("%(count)s conversation(s) taken over."),
            "Taken over by a person",
        )

    @admin.action(description=_("Hand back to the assistant"), permissions=["change"])
    def hand_back(self, request, queryset):
        self._each(
            request,
            queryset,
            desk_actions.hand_back,
            _("%(count)s conversation(s) handed back to the assistant."),
            "Handed back to the bot",
        )

    @admin.action(description=_("Resolve"), permissions=["change"])
    def close(self, request, queryset):
        self._each(
            request,
            queryset,
            desk_actions.resolve,
            _("%(count)s conversation(s) resolved."),
            "Closed",
        )


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "customer",
        "direction",
        "type",
        "short_text",
        "state",
        "delivery_status",
        "kind",
    )
    list_filter = ("direction", "type", "state", "delivery_status", "kind", "created_at")
    list_select_related = ("conversation__customer",)
    search_fields = ("provider_id",)
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("customer"))
    def customer(self, obj):
        return str(obj.conversation.customer)

    @admin.display(description=_("text"))
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"
