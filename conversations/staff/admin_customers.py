"""The customers' admin: who they are (number and document masked unless the permission allows),
their open conversation, and their whole history across conversations. Registered through
conversations/admin.py, which imports it."""

import contextlib
import re

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from stdnum.br import cnpj, cpf

from conversations.masking import mask_document, mask_phone
from conversations.models import Conversation, Customer, Message
from conversations.phone import normalise_wa_id
from conversations.staff.admin_privacy import PrivacyActions
from conversations.staff.media_view import message_media_html
from crm_gateway.actions import refresh_crm_data

FULL_DOCUMENT_PERMISSION = "conversations.view_full_document"
HISTORY_COLUMNS = (
    _("time"),
    _("conversation"),
    _("direction"),
    _("type"),
    _("text"),
    _("state / delivery"),
    _("kind"),
    _("turn"),
)
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
    if message.direction == Message.Direction.INBOUND:
        return _("answered by turn #%(id)s") % {"id": message.turn_id}
    return _("sent by turn #%(id)s") % {"id": message.turn_id}


class HasDocumentFilter(admin.SimpleListFilter):
    title = _("document")
    parameter_name = "document"

    def lookups(self, request, model_admin):
        return [("yes", _("Known")), ("no", _("Unknown"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(document="")
        if self.value() == "no":
            return queryset.filter(document="")
        return queryset


class OpenConversationFilter(admin.SimpleListFilter):
    title = _("open conversation")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [
            ("bot", _("With the assistant")),
            ("human", _("With a person")),
            ("none", _("None open")),
        ]

    def queryset(self, request, queryset):
        open_with = Q(conversations__status=Conversation.Status.OPEN)
        if self.value() in (Conversation.Handler.BOT, Conversation.Handler.HUMAN):
            return queryset.filter(open_with, conversations__handler=self.value())
        if self.value() == "none":
            return queryset.exclude(open_with)
        return queryset


def short_datetime(value) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else "-"


@admin.register(Customer)
class CustomerAdmin(PrivacyActions, admin.ModelAdmin):
    list_display = ("name", "masked_number", "masked_document", "last_seen", "first_seen")
    list_filter = (HasDocumentFilter, OpenConversationFilter, "last_seen_at", "first_seen_at")
    search_fields = ("profile_name", "wa_id", "reply_wa_id", "document")
    search_help_text = _("Name, WhatsApp number or CPF/CNPJ, with or without punctuation.")
    ordering = ("-last_seen_at",)

    # Lists show dates short ("02/12/2026 03:40"): the long form pushed columns off the screen.
    @admin.display(description=_("last seen"), ordering="last_seen_at")
    def last_seen(self, customer):
        return short_datetime(customer.last_seen_at)

    @admin.display(description=_("first seen"), ordering="first_seen_at")
    def first_seen(self, customer):
        return short_datetime(customer.first_seen_at)

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
    actions = [refresh_crm_data, "export_customer_data", "erase_customer_data"]

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

    @admin.display(description=_("name"), ordering="profile_name")
    def name(self, obj):
        return obj.profile_name or _("(no name)")

    @admin.display(description=_("WhatsApp number"))
    def masked_number(self, obj):
        return mask_phone(obj.wa_id)

    @admin.display(description=_("CPF/CNPJ"))
    def masked_document(self, obj):
        return mask_document(obj.document) if obj.document else "-"

    @admin.display(description=_("CPF/CNPJ"))
    def document_full(self, obj):
        return format_document(obj.document) if obj.document else "-"

    @admin.display(description=_("CPF/CNPJ"))
    def document_masked(self, obj):
        return self.masked_document(obj)

    @admin.display(description=_("history (all conversations, oldest first)"))
    def history(self, obj):
        everything = Message.objects.filter(conversation__customer=obj)
        total = everything.count()
        latest = list(everything.order_by("-created_at", "-id")[:HISTORY_LIMIT])
        latest.reverse()
        if not latest:
            return _("No messages yet.")
        note = ""
        if total > len(latest):
            note = format_html(
                "<p>{}</p>",
                _("Showing the latest %(shown)s of %(total)s messages.")
                % {"shown": len(latest), "total": total},
            )
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
                    format_html("{}{}", m.text, message_media_html(m)),
                    message_status(m),
                    m.get_kind_display(),
                    turn_label(m),
                )
                for m in latest
            ),
        )
        return format_html(
            '{}<table class="customer-history"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            note,
            format_html_join("", "<th>{}</th>", ((str(title),) for title in HISTORY_COLUMNS)),
            rows,
        )
