from django.conf import settings
from django.contrib import admin
from django.urls import path

from conversations.staff import desk_views, media_view, simulator
from conversations.webhook import views


def staff_only(view):
    """The admin's login and staff check (anonymous: to the login page)."""
    return admin.site.admin_view(view)


urlpatterns = [
    path("webhooks/whatsapp/", views.whatsapp_webhook, name="whatsapp-webhook"),
    path("staff/media/<int:message_id>/", media_view.message_media, name="message-media"),
    path("simulator/", simulator.simulator_page, name="simulator"),
    path("simulator/send/", simulator.simulator_send, name="simulator-send"),
    # The staff desk, inside the admin's URL space (supportbot/urls.py puts these first).
    path(f"{settings.ADMIN_URL}inbox/", staff_only(desk_views.inbox_page), name="desk-inbox"),
    path(
        f"{settings.ADMIN_URL}inbox/queues/",
        staff_only(desk_views.queues_fragment),
        name="desk-queues",
    ),
    path(
        f"{settings.ADMIN_URL}inbox/<int:conversation_id>/",
        staff_only(desk_views.inbox_page),
        name="desk-open",
    ),
    path(
        f"{settings.ADMIN_URL}inbox/<int:conversation_id>/pane/",
        staff_only(desk_views.pane_fragment),
        name="desk-pane",
    ),
    path(
        f"{settings.ADMIN_URL}inbox/<int:conversation_id>/<str:action>/",
        staff_only(desk_views.action_view),
        name="desk-action",
    ),
]
