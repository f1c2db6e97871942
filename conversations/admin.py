"""The admin for support staff: customers with their whole history, conversations they take over
and hand back, and a message log nobody can edit. Lists never show a full number or document."""

import contextlib
import re

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from stdnum.br import cnpj, cpf

from conversations import whatsapp
from conversations.masking import mask_document, mask_phone
from conversations.models import WHATSAPP_TEXT_MAX, Conversation, Customer, Message, Turn
from conversations.phone import normalise_wa_id
from crm_gateway.actions import refresh_crm_data

FULL_DOCUMENT_PERMISSION = "conversations.view_full_document"
# The customer page renders at most this many of the latest messages.
HISTORY_LIMIT = 500


def format_document(document: str) -> str:
    """529.982.247-25 or 12.ABC.345/01DE-35 from the stored compact form."""
    if len(document) == 11:
        return cpf.format(document)
    if len(document) == 14:
        return cnpj.format(document)
    return document


def message_status(message: Message) -> str:
    """Processing state for inbound, delivery status for outbound."""
    if message.direction == Message.Direction.INBOUND:
        return message.get_state_display()
    return message.get_delivery_status_display()


def conversation_link(conversation_id: int) -> str:
    url = reverse("admin:conversations_conversation_change", args=[conversation_id])
    return format_html('<a href="{}">#{}</a>', url, conversation_id)


def turn_label(message: Message) -> str:
    """Which turn a message belongs to: the turn that answered it, or the turn that sent it."""
    if not message.turn_id:
        return ""
    role = "answered by" if message.direction == Message.Direction.INBOUND else "sent by"
    return f"{role} turn #{message.turn_id}"


class HasDocumentFilter(admin.SimpleListFilter):
    title = "document"
    parameter_name = "document"

    def lookups(self, request, model_admin):
        return [("yes", "Known"), ("no", "Unknown")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(document="")
        if self.value() == "no":
            return queryset.filter(document="")
        return queryset


class OpenConversationFilter(admin.SimpleListFilter):
    title = "open conversation"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("bot", "With the bot"), ("human", "With a person"), ("none", "None open")]

    def queryset(self, request, queryset):
        open_with = Q(conversations__status=Conversation.Status.OPEN)
        if self.value() in (Conversation.Handler.BOT, Conversation.Handler.HUMAN):
            return queryset.filter(open_with, conversations__handler=self.value())
        if self.value() == "none":
            return queryset.exclude(open_with)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "masked_number", "masked_document", "last_seen_at", "first_seen_at")
    list_filter = (HasDocumentFilter, OpenConversationFilter, "last_seen_at", "first_seen_at")
    search_fields = ("profile_name", "wa_id", "reply_wa_id", "document")
    search_help_text = "Name, WhatsApp number or CPF/CNPJ, with or without punctuation."
    ordering = ("-last_seen_at",)
    readonly_fields = (
        "wa_id",
        "reply_wa_id",
        "profile_name",
        "document_full",
        "document_masked",
        "first_seen_at",
        "last_seen_at",
        "history",
    )
    actions = [refresh_crm_data]

    def get_fields(self, request, obj=None):
        document = (
            "document_full"
            if request.user.has_perm(FULL_DOCUMENT_PERMISSION)
            else "document_masked"
        )
        return (
            "profile_name",
            "wa_id",
            "reply_wa_id",
            document,
            "first_seen_at",
            "last_seen_at",
            "history",
        )

    def has_add_permission(self, request):
        return False  # customers come from WhatsApp

    def get_search_results(self, request, queryset, search_term):
        """Also match what a person types around a document or number: 529.982.247-25,
        +55 (11) 98765-4321, or a mobile without its ninth digit."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        compact = re.sub(r"[^0-9A-Za-z]", "", search_term).upper()
        digits = re.sub(r"\D", "", search_term)
        extra = Q()
        if len(digits) >= 3 and compact != search_term.strip():
            extra |= Q(document__contains=compact)
        if len(digits) >= 3:
            extra |= Q(wa_id__contains=digits) | Q(reply_wa_id__contains=digits)
            with contextlib.suppress(ValueError):  # too short or long for a number
                extra |= Q(wa_id=normalise_wa_id(digits))
        if extra:
            results = results | queryset.filter(extra)
        return results, may_have_duplicates

    @admin.display(description="name", ordering="profile_name")
    def name(self, obj):
        return obj.profile_name or "(no name)"

    @admin.display(description="WhatsApp number")
    def masked_number(self, obj):
        return mask_phone(obj.wa_id)

    @admin.display(description="CPF/CNPJ")
    def masked_document(self, obj):
        return mask_document(obj.document) if obj.document else "-"

    @admin.display(description="CPF/CNPJ")
    def document_full(self, obj):
        return format_document(obj.document) if obj.document else "-"

    @admin.display(description="CPF/CNPJ")
    def document_masked(self, obj):
        return self.masked_document(obj)

    @admin.display(description="history (all conversations, oldest first)")
    def history(self, obj):
        everything = Message.objects.filter(conversation__customer=obj)
        total = everything.count()
        latest = list(everything.order_by("-created_at", "-id")[:HISTORY_LIMIT])
        latest.reverse()
        if not latest:
            return "No messages yet."
        note = ""
        if total > len(latest):
            note = format_html("<p>Showing the latest {} of {} messages.</p>", len(latest), total)
        rows = format_html_join(
            "\n",
            '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            '<td style="white-space: pre-wrap">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    f"message-{m.direction}",
                    timezone.localtime(m.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    conversation_link(m.conversation_id),
                    m.get_direction_display(),
                    m.type,
                    m.text,
                    message_status(m),
                    m.get_kind_display(),
                    turn_label(m),
                )
                for m in latest
            ),
        )
        return format_html(
            '{}<table class="customer-history"><thead><tr><th>time</th><th>conversation</th>'
            "<th>direction</th><th>type</th><th>text</th><th>state / delivery</th><th>kind</th>"
            "<th>turn</th></tr></thead><tbody>{}</tbody></table>",
            note,
            rows,
        )


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
        elif not text:
            problem = "Type a reply."
        elif len(text) > WHATSAPP_TEXT_MAX:
            problem = f"WhatsApp refuses messages over {WHATSAPP_TEXT_MAX} characters."
        if problem:
            self.message_user(request, problem, messages.ERROR)
            return back
        try:
            sent = whatsapp.send_text(conversation, text, kind=Message.Kind.STAFF)
        except whatsapp.SendError as exc:
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
        changed = Conversation.objects.filter(pk__in=ids).update(
            handler=Conversation.Handler.HUMAN, updated_at=timezone.now()
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


from conversations import admin_runtime  # noqa: F401,E402  (registers RuntimeSettings admin)
