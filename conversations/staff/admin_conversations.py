"""The admin for support staff: conversations they take over and hand back, and a message log
nobody can edit. Customers with their whole history: conversations.staff.admin_customers; the runtime
knobs: conversations.staff.admin_runtime (conversations/admin.py imports all three). Lists never show
a full number or document."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import WHATSAPP_TEXT_MAX, Conversation, Message, Turn
from conversations.whatsapp import sender
from conversations.whatsapp.window import within_reply_window


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
        "started_at",
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
    verbose_name_plural = "turns (timings in ms)"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("messages")

    @admin.display(description="answered → sent")
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
        "created_at",
        "direction",
        "type",
        "text",
        "state",
        "delivery_status",
        "kind",
        "turn",
    )
    ordering = ("created_at", "id")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "status", "handler", "handoff_reason", "updated_at")
    list_filter = ("status", "handler", "updated_at")
    list_select_related = ("customer",)
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
    )
    inlines = [TurnInline, MessageInline]
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
        text = request.POST.get("text", "").strip()
        problem = ""
        if conversation.status != Conversation.Status.OPEN:
            problem = "This conversation is closed."
        elif conversation.handler != Conversation.Handler.HUMAN:
            problem = "Take the conversation over first, so the bot does not answer as well."
        elif not within_reply_window(conversation.last_inbound_at):
            problem = (
                "The customer's last message is more than 24 hours old: WhatsApp accepts no"
                " free-form reply until they write again."
            )
        elif not text:
            problem = "Type a reply."
        elif len(text) > WHATSAPP_TEXT_MAX:
            problem = f"WhatsApp refuses messages over {WHATSAPP_TEXT_MAX} characters."
        if problem:
            self.message_user(request, problem, messages.ERROR)
            return back
        try:
            sent = sender.send_text(conversation, text, kind=Message.Kind.STAFF)
        except sender.SendError as exc:
            self.message_user(request, f"Not sent: {exc}", messages.ERROR)
            return back
        self.log_change(request, conversation, f"Sent a staff reply (message #{sent.pk})")
        self.message_user(request, "Reply sent.")
        return back

    def _done(self, request, queryset, changed: int, what: str, log: str) -> None:
        for conversation in queryset:
            self.log_change(request, conversation, log)
        self.message_user(request, f"{changed} conversation(s) {what}.")

    @admin.action(
        description="Take over (a person answers, the bot stays silent)", permissions=["change"]
    )
    def take_over(self, request, queryset):
        targets = queryset.filter(status=Conversation.Status.OPEN).exclude(
            handler=Conversation.Handler.HUMAN
        )
        ids = list(targets.values_list("pk", flat=True))
        now = timezone.now()
        changed = Conversation.objects.filter(pk__in=ids).update(
            handler=Conversation.Handler.HUMAN,
            handoff_source=Conversation.HandoffSource.STAFF,
            handoff_at=now,
            updated_at=now,
        )
        self._done(
            request,
            Conversation.objects.filter(pk__in=ids),
            changed,
            "taken over",
            "Taken over by a person",
        )

    @admin.action(description="Hand back to the bot", permissions=["change"])
    def hand_back(self, request, queryset):
        targets = queryset.filter(
            status=Conversation.Status.OPEN, handler=Conversation.Handler.HUMAN
        )
        ids = list(targets.values_list("pk", flat=True))
        changed = Conversation.objects.filter(pk__in=ids).update(
            handler=Conversation.Handler.BOT, handoff_reason="", updated_at=timezone.now()
        )
        self._done(
            request,
            Conversation.objects.filter(pk__in=ids),
            changed,
            "handed back to the bot",
            "Handed back to the bot",
        )

    @admin.action(description="Close", permissions=["change"])
    def close(self, request, queryset):
        now = timezone.now()
        ids = list(queryset.filter(status=Conversation.Status.OPEN).values_list("pk", flat=True))
        changed = Conversation.objects.filter(pk__in=ids).update(
            status=Conversation.Status.CLOSED, closed_at=now, updated_at=now
        )
        self._done(request, Conversation.objects.filter(pk__in=ids), changed, "closed", "Closed")


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

    @admin.display(description="customer")
    def customer(self, obj):
        return str(obj.conversation.customer)

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"
