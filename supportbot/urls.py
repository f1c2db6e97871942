from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from conversations.staff.dashboard import dashboard_view
from supportbot.health import healthz, readyz
from supportbot.metrics_view import metrics_view

urlpatterns = [
    path(
        f"{settings.ADMIN_URL}dashboard/",
        admin.site.admin_view(dashboard_view),
        name="admin-dashboard",
    ),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("conversations.urls")),
    path("", include("crm_gateway.urls")),
]
