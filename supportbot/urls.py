from django.contrib import admin
from django.urls import include, path

from supportbot.health import healthz

urlpatterns = [
    # First: the staff desk lives under /admin/inbox/, which the admin's own URLs would 404.
    path("", include("conversations.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("crm_gateway.urls")),
]
