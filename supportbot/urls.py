from django.contrib import admin
from django.urls import include, path

from supportbot.health import healthz, readyz
from supportbot.metrics_view import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("conversations.urls")),
    path("", include("crm_gateway.urls")),
]
