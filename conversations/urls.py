from django.urls import path

from conversations import simulator, webhook

urlpatterns = [
    path("webhooks/whatsapp/", webhook.whatsapp_webhook, name="whatsapp-webhook"),
    path("simulator/", simulator.simulator_page, name="simulator"),
    path("simulator/send/", simulator.simulator_send, name="simulator-send"),
]
