"""conversations.staff.desk_consumer through the full ASGI application: who may listen, and the
staff events that reach the page."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from conversations.events import send_to_staff, staff_event
from supportbot.asgi import application
from tests.fakes.desk import member, waiting

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = "http://127.0.0.1:8000"


def session_cookie(user) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


def socket(cookie: bytes = b"", origin: str = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/staff/", headers=headers)


async def refused(communicator) -> bool:
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return not connected


async def test_it_refuses_anonymous_connections():
    assert await refused(socket())


async def test_it_refuses_staff_without_the_view_permission():
    user = await sync_to_async(member)("otto")
    assert await refused(socket(await sync_to_async(session_cookie)(user)))


async def test_it_refuses_a_non_staff_user_even_with_the_permission():
    user = await sync_to_async(member)("nina", "Atendimento", is_staff=False)
    assert await refused(socket(await sync_to_async(session_cookie)(user)))


async def test_it_refuses_an_inactive_member():
    user = await sync_to_async(member)("ivo", "Atendimento")
    cookie = await sync_to_async(session_cookie)(user)
    user.is_active = False
    await sync_to_async(user.save)()
    assert await refused(socket(cookie))


async def test_it_refuses_a_page_from_another_origin():
    user = await sync_to_async(member)("ana", "Atendimento")
    cookie = await sync_to_async(session_cookie)(user)
    assert await refused(socket(cookie, origin="https://evil.example"))


async def test_it_pushes_staff_events_to_a_member_of_atendimento():
    user = await sync_to_async(member)("ana", "Atendimento")
    communicator = socket(await sync_to_async(session_cookie)(user))
    try:
        connected, _ = await communicator.connect()
        assert connected
        conversation = await sync_to_async(waiting)("5511911110001", 3)
        await sync_to_async(send_to_staff)(staff_event("handoff", conversation.pk, source="tool"))
        event = await communicator.receive_json_from(timeout=2)
        assert event == {
            "event": "handoff",
            "conversation_id": conversation.pk,
            "data": {"source": "tool"},
        }
        await communicator.send_json_to({"event": "resolved"})  # the page cannot inject events
        assert await communicator.receive_nothing(timeout=0.2)
    finally:
        await communicator.disconnect()


async def test_it_pushes_a_resolution_made_through_the_desk():
    from conversations.staff import desk_actions

    user = await sync_to_async(member)("ana", "Atendimento")
    communicator = socket(await sync_to_async(session_cookie)(user))
    try:
        assert (await communicator.connect())[0]
        conversation = await sync_to_async(waiting)("5511911110001", 3)
        await sync_to_async(desk_actions.resolve)(conversation, user)
        event = await communicator.receive_json_from(timeout=2)
        assert (event["event"], event["conversation_id"]) == ("resolved", conversation.pk)
        assert event["data"] == {"closed_by": user.pk}
    finally:
        await communicator.disconnect()


@pytest.mark.live
async def test_it_pushes_events_through_the_redis_channel_layer(settings, live_redis_url):
    """Production shape: the desk action (a web process) and the socket (daphne) meet on Redis."""
    from django.db import connections

    from conversations.staff import desk_actions

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [live_redis_url], "prefix": "supportbot-test-desk"},
        }
    }
    user = await sync_to_async(member)("ana", "Atendimento")
    communicator = socket(await sync_to_async(session_cookie)(user))
    try:
        assert (await communicator.connect())[0]
        conversation = await sync_to_async(waiting)("5511911110001", 3)
        await sync_to_async(desk_actions.assign)(conversation, user, user)
        event = await communicator.receive_json_from(timeout=3)
        assert (event["event"], event["data"]["assigned_to"]) == ("assigned", user.pk)
    finally:
        await communicator.disconnect()
        await sync_to_async(connections.close_all)()
