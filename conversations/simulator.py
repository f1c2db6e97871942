# Placeholder until the simulator lands (issue 2).
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404


def simulator_page(request):
    raise Http404


def simulator_send(request):
    raise Http404


class SimulatorConsumer(AsyncJsonWebsocketConsumer):
    pass
