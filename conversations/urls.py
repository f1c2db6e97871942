from django.urls import path

from conversations.staff import simulator
from conversations.webhook import views

urlpatterns = [
    path("webhooks/whatsapp/", views.whatsapp_webhook, name="whatsapp-webhook"),
    path("simulator/", simulator.simulator_page, name="simulator"),
    path("simulator/send/", simulator.simulator_send, name="simulator-send"),
]
