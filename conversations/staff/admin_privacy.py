"""The LGPD actions on the customers' admin page, for supervisors only (the permissions
"export_customer_data" and "erase_customer_data", which the group "Supervisão" holds): export
as a JSON download, and erase after a confirmation page. Both are recorded in the admin log and
the privacy audit, naming the customer by id only."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conversations.models import Customer, PrivacyAudit
from conversations.privacy import audit
from conversations.privacy.erase import erase, plan
from conversations.privacy.export import export_counts, export_json

EXPORT_PERMISSION = "conversations.export_customer_data"
ERASE_PERMISSION = "conversations.erase_customer_data"


def _log(request, customers, message: str) -> None:
    """The admin log's entry: no str(customer), which is the person's name."""
    content_type = ContentType.objects.get_for_model(Customer)
    for customer in customers:
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type_id=content_type.pk,
            object_id=str(customer.pk),
            object_repr=f"Customer {customer.pk}",
            action_flag=CHANGE,
            change_message=message,
        )


class PrivacyActions:
    """Mixed into CustomerAdmin: its actions and the permissions that show them."""

    def has_export_customer_data_permission(self, request):
        return request.user.has_perm(EXPORT_PERMISSION)

    def has_erase_customer_data_permission(self, request):
        return request.user.has_perm(ERASE_PERMISSION)

    @admin.action(
        description=gettext_lazy("Export all their data (LGPD, JSON)"),
        permissions=["export_customer_data"],
    )
    def export_customer_data(self, request, queryset):
        customers = list(queryset.order_by("pk"))
        response = HttpResponse(export_json(customers), content_type="application/json")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="lgpd-export-{stamp}.json"'
        counts = export_counts(customers)
        for customer in customers:
            audit.record("export", request.user.get_username(), counts, customer_id=customer.pk)
        _log(request, customers, "LGPD export")
        return response

    @admin.action(
        description=gettext_lazy("Erase all their data (LGPD)…"),
        permissions=["erase_customer_data"],
    )
    def erase_customer_data(self, request, queryset):
        customers = list(queryset.order_by("pk"))
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase all data of these customers?"),
                "opts": self.model._meta,
                "customers": customers,
                "counts": plan(customers),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/conversations/customer/erase_confirmation.html", context
            )
        counts = erase(customers, actor=request.user.get_username())
        _log(request, customers, f"LGPD erase: {counts['messages']} messages")
        self.message_user(
            request,
            _(
                "Erased: %(customers)d customer(s), %(messages)d message(s), "
                "%(files)d media file(s)."
            )
            % counts,
            messages.SUCCESS,
        )
        return None


@admin.register(PrivacyAudit)
class PrivacyAuditAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by the operations themselves."""

    list_display = ("at", "action", "actor", "customer_id", "counts")
    list_filter = ("action", "at")
    ordering = ("-at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
