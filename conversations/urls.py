from django.urls import path

from conversations.staff import media_view, simulator
from conversations.webhook import views

urlpatterns = [
    path("webhooks/whatsapp/", views.whatsapp_webhook, name="whatsapp-webhook"),
    path("staff/media/<int:message_id>/", media_view.message_media, name="message-media"),
    path("simulator/", simulator.simulator_page, name="simulator"),
    path("simulator/send/", simulator.simulator_send, name="simulator-send"),
]
