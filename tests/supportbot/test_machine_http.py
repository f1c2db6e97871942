import pytest
from channels.testing import HttpCommunicator

from supportbot.asgi import application
from supportbot.machine_http import WEBHOOK_PATH, MachinePathRouter


class Recorder:
    def __init__(self, name: str, calls: list):
        self.name, self.calls = name, calls

    async def __call__(self, scope, receive, send):
        self.calls.append((self.name, scope["path"]))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/webhooks/whatsapp/", "machine"),
        ("/webhooks/whatsapp", "django"),  # Django answers it (and redirects as it always did)
        ("/webhooks/whatsapp/extra", "django"),
        ("/admin/", "django"),
        ("/healthz", "django"),
    ],
)
async def test_it_routes_only_the_machine_paths_past_django(path, expected):
    calls = []
    router = MachinePathRouter(
        Recorder("django", calls), routes={"/webhooks/whatsapp/": Recorder("machine", calls)}
    )
    await router({"type": "http", "path": path}, None, None)
    assert calls == [(expected, path)]


def test_the_webhook_path_is_the_one_django_serves_too():
    from django.urls import reverse

    assert reverse("whatsapp-webhook") == WEBHOOK_PATH


@pytest.mark.django_db
async def test_other_paths_keep_the_whole_middleware_stack():
    communicator = HttpCommunicator(
        application, "GET", "/healthz", headers=[(b"host", b"127.0.0.1")]
    )
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200
    headers = {name.lower(): value for name, value in response["headers"]}
    assert headers[b"x-frame-options"] == b"DENY"
