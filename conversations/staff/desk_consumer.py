"""The staff desk's live feed: a WebSocket that forwards conversations.events' staff events
(ids and states only) to active staff with the view permission. The origin is checked in
supportbot/asgi.py (AllowedHostsOriginValidator), the session by AuthMiddlewareStack.

The feed carries no history: a page that (re)connects reads the queues and its pane again."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.events import STAFF_GROUP

VIEW = "conversations.view_conversation"


def may_watch(user) -> bool:
    return bool(
        user and user.is_authenticated and user.is_active and user.is_staff and user.has_perm(VIEW)
    )


class StaffDeskConsumer(AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self):
        if not await database_sync_to_async(may_watch)(self.scope.get("user")):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(STAFF_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code):
        if self.joined:
            await self.channel_layer.group_discard(STAFF_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # staff act through the desk's HTTP actions (CSRF, permissions, the admin log)

    async def staff_event(self, event):
        await self.send_json(
            {
                "event": event["event"],
                "conversation_id": event["conversation_id"],
                "data": event.get("data", {}),
            }
        )
