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
    # Before the admin's own URLs, which would 404 the staff desk under {ADMIN_URL}inbox/.
    path("", include("conversations.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("crm_gateway.urls")),
]
