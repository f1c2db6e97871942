"""Django's admin autodiscovery looks here; the staff's pages live in conversations.staff."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from conversations.staff import (  # noqa: F401 (each module registers its admin on import)
    admin_canned,
    admin_conversations,
    admin_customers,
    admin_runtime,
)

# Issue 14: the admin index links to the dashboard (Painel) for those who may open it.
admin.site.index_template = "admin/conversations/index.html"
admin.site.site_header = "supportbot"
admin.site.site_title = "supportbot"
admin.site.index_title = _("Administration")
