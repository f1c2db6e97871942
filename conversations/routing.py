from django.urls import path

from conversations.staff.desk_consumer import StaffDeskConsumer
from conversations.staff.simulator import SimulatorConsumer

websocket_urlpatterns = [
    path("ws/simulator/<str:wa_id>/", SimulatorConsumer.as_asgi()),
    path("ws/staff/", StaffDeskConsumer.as_asgi()),
]
