from django.contrib import admin, messages
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from crm_gateway import keys, lookup
from crm_gateway.breaker import crm_breaker
from crm_gateway.models import Outage, OutageNotice, Ticket


class ActiveFilter(admin.SimpleListFilter):
    """Active outages by default: that is what staff open this page for."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("resolved", _("Resolved")), ("all", _("All"))]

    def choices(self, changelist):
        current = self.value() or "active"
        for value, title in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.active()


class OutageNoticeInline(admin.TabularInline):
    model = OutageNotice
    extra = 0
    can_delete = False
    fields = ["conversation", "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "region_list",
        "started_at",
        "expected_end_at",
        "resolved_at",
        "active",
        "notified_customers",
    ]
    list_filter = [ActiveFilter]
    search_fields = ["title", "message"]
    actions = ["resolve_selected"]
    readonly_fields = ["resolved_at", "created_at", "notified_customers"]
    inlines = [OutageNoticeInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(notified=Count("notices__conversation__customer", distinct=True))
        )

    @admin.display(description=_("regions"))
    def region_list(self, outage):
        return ", ".join(outage.regions)

    @admin.display(description=_("active"), boolean=True)
    def active(self, outage):
        return outage.is_active

    @admin.display(description=_("customers notified"), ordering="notified")
    def notified_customers(self, outage):
        return getattr(outage, "notified", None) or 0

    @admin.action(description=_("Resolve selected outages"))
    def resolve_selected(self, request, queryset):
        resolved = sum(
            1 for outage in queryset.filter(resolved_at__isnull=True) if outage.resolve()
        )
        self.message_user(
            request, _("%(count)s outage(s) resolved.") % {"count": resolved}, messages.SUCCESS
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["crm_breaker_state"] = crm_breaker.state()
        try:
            stats = lookup.stats()
            stats["hit_rate_percent"] = round(stats["hit_rate"] * 100, 1)
        except keys.REDIS_ERRORS:
            stats = None
        extra_context["crm_stats"] = stats
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Tickets the assistant opened in the CRM: read-only, the CRM is where they are worked."""

    list_display = ("protocol", "category", "point_id", "conversation", "created_at")
    list_filter = ("category",)
    search_fields = ("protocol", "point_id")
    readonly_fields = (
        "protocol",
        "category",
        "point_id",
        "description",
        "conversation",
        "idempotency_key",
        "created_at",
    )
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
