# Placeholder until the worker lands (issue 2/3).
from channels.consumer import AsyncConsumer


class InboundWorker(AsyncConsumer):
    pass
