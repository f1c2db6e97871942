"""Admin actions on customers (wired into CustomerAdmin by the conversations admin)."""

from django.contrib import admin, messages

from crm_gateway import lookup


@admin.action(description="Refresh CRM data (forget the cached copy and ask the CRM again)")
def refresh_crm_data(modeladmin, request, queryset):
    refreshed = failed = without_document = 0
    for document in queryset.values_list("document", flat=True):
        if not document:
            without_document += 1
            continue
        result = lookup.refresh(document)
        if result.source == "crm" or result.source == "direct":
            refreshed += 1
        else:
            failed += 1
    parts = [f"{refreshed} customer(s) refreshed from the CRM"]
    if failed:
        parts.append(f"{failed} not refreshed (the CRM did not answer; older data kept if any)")
    if without_document:
        parts.append(f"{without_document} skipped (no CPF/CNPJ yet)")
    modeladmin.message_user(
        request, "; ".join(parts) + ".", messages.WARNING if failed else messages.SUCCESS
    )
