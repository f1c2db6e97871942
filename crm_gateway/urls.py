from django.urls import path

from crm_gateway import api

urlpatterns = [
    path("api/outages/", api.open_outage_view, name="outage-open"),
    path("api/outages/<int:outage_id>/resolve/", api.resolve_outage_view, name="outage-resolve"),
]
