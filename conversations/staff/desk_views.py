"""The staff desk inside the admin: /admin/inbox/ (queues, search, the conversation pane) and the
pane's actions. Thin: permissions and input here, the work in desk_actions, the reads in
desk_queries. Every action is a POST refused with 403 without its permission, whoever calls it."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _

from conversations.models import Conversation
from conversations.staff import desk_actions, desk_queries

VIEW = "conversations.view_conversation"
CHANGE = desk_actions.CHANGE
ADD_NOTE = desk_actions.ADD_NOTE
STAFF_LIST_LIMIT = 200


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _colleagues(user) -> list:
    """Active staff who may answer, in one query (the pane reloads on every live event)."""
    staff = get_user_model().objects.with_perm(
        CHANGE,
        backend="django.contrib.auth.backends.ModelBackend",  # the one granting permissions
    )
    return list(
        staff.filter(is_staff=True).exclude(pk=user.pk).order_by("username")[:STAFF_LIST_LIMIT]
    )


def _conversation(conversation_id: int) -> Conversation:
    """With what the pane shows of it, in one query."""
    return get_object_or_404(
        Conversation.objects.select_related("customer", "assigned_to", "closed_by"),
        pk=conversation_id,
    )


def inbox_page(request, conversation_id: int | None = None):
    _require(request, VIEW)
    context = {
        **admin.site.each_context(request),
        "title": _("Inbox"),
        "open_id": conversation_id or "",
        "queues": desk_queries.queues(request.user, request.GET.get("q", "")),
        "q": request.GET.get("q", ""),
    }
    if conversation_id is not None:
        conversation = _conversation(conversation_id)
        context.update(_pane_context(request, conversation))
    return render(request, "admin/desk/inbox.html", context)


def queues_fragment(request):
    _require(request, VIEW)
    context = {"queues": desk_queries.queues(request.user, request.GET.get("q", ""))}
    return render(request, "admin/desk/queues.html", context)


def _pane_context(request, conversation: Conversation) -> dict:
    user = request.user
    return {
        **desk_queries.pane(conversation, user),
        "may_change": user.has_perm(CHANGE),
        "may_note": user.has_perm(ADD_NOTE),
        "colleagues": _colleagues(user) if user.has_perm(CHANGE) else [],
    }


def pane_fragment(request, conversation_id: int):
    _require(request, VIEW)
    conversation = _conversation(conversation_id)
    return render(request, "admin/desk/pane.html", _pane_context(request, conversation))


def _act(request, conversation: Conversation, action: str):
    user, post = request.user, request.POST
    if action == "take_over":
        desk_actions.take_over(conversation, user)
    elif action == "assign_me":
        desk_actions.assign(conversation, user, user)
    elif action == "transfer":
        desk_actions.assign(conversation, user, desk_actions.staff_member(post.get("to")))
    elif action == "hand_back":
        desk_actions.hand_back(conversation, user)
    elif action == "resolve":
        desk_actions.resolve(conversation, user)
    elif action == "reply":
        return {"message_id": desk_actions.reply(conversation, user, post.get("text", "")).pk}
    elif action == "note":
        return {"note_id": desk_actions.add_note(conversation, user, post.get("text", "")).pk}
    return {}


ACTIONS = {
    "take_over": CHANGE,
    "assign_me": CHANGE,
    "transfer": CHANGE,
    "hand_back": CHANGE,
    "resolve": CHANGE,
    "reply": CHANGE,
    "note": ADD_NOTE,
}


def action_view(request, conversation_id: int, action: str):
    """POST /admin/inbox/<id>/<action>/: JSON {"ok": true, ...} or {"error": "..."} (409)."""
    if action not in ACTIONS:
        return JsonResponse({"error": _("Unknown action.")}, status=404)
    _require(request, ACTIONS[action])
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    conversation = get_object_or_404(
        Conversation.objects.select_related("customer"), pk=conversation_id
    )
    try:
        result = _act(request, conversation, action)
    except desk_actions.DeskRefusal as refusal:
        return JsonResponse({"error": str(refusal)}, status=409)
    return JsonResponse({"ok": True, **result})
