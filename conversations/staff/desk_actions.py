"""What staff do to a conversation from the desk: take over, assign, transfer, hand back,
resolve, reply, note. Plain functions; each change is a conditional update (two people clicking
at once cannot both win), is logged without personal data, and tells the desk after commit.

A DeskRefusal carries the reason in the staff's language; nothing has changed when it is raised.
"""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.desk_models import NOTE_MAX
from conversations.events import notify_staff_on_commit
from conversations.models import WHATSAPP_TEXT_MAX, Conversation, Message, StaffNote
from conversations.runtime import get_runtime
from conversations.whatsapp import sender
from conversations.whatsapp.window import within_reply_window

logger = logging.getLogger(__name__)

CHANGE = "conversations.change_conversation"
ADD_NOTE = "conversations.add_staffnote"
OPEN, CLOSED = Conversation.Status.OPEN, Conversation.Status.CLOSED
BOT, HUMAN = Conversation.Handler.BOT, Conversation.Handler.HUMAN


class DeskRefusal(Exception):
    """The action is not possible now; the message says why (shown to staff)."""


def _changed(conversation_id: int, where: Q, **changes) -> bool:
    changes["updated_at"] = timezone.now()
    return bool(Conversation.objects.filter(where, pk=conversation_id).update(**changes))


def _refuse_unless(done: bool, why: str) -> None:
    if not done:
        raise DeskRefusal(why)


def _tell_customer(conversation: Conversation, text: str) -> None:
    """The optional take over / resolve message: only when set and WhatsApp still allows it."""
    if not text.strip() or not within_reply_window(conversation.last_inbound_at):
        return
    try:
        sender.send_text(conversation, text.strip(), kind=Message.Kind.STAFF)
    except sender.SendError:
        logger.warning("conversation %s: desk message to the customer not sent", conversation.pk)


def take_over(conversation: Conversation, user) -> None:
    """A person answers from now on and the bot stops at once: a turn in flight checks the
    handler right before sending (conversations.engine.turn_run) and sends nothing."""
    now = timezone.now()
    done = _changed(
        conversation.pk,
        Q(status=OPEN),
        handler=HUMAN,
        assigned_to=user,
        handoff_at=conversation.handoff_at or now,
        handoff_source=conversation.handoff_source or Conversation.HandoffSource.STAFF,
    )
    _refuse_unless(done, _("This conversation is resolved."))
    notify_staff_on_commit("assigned", conversation.pk, handler=HUMAN, assigned_to=user.pk)
    logger.info("conversation %s taken over by staff %s", conversation.pk, user.pk)
    transaction.on_commit(lambda: _tell_customer(conversation, get_runtime().take_over_message))


def assign(conversation: Conversation, user, assignee) -> None:
    """Assign a conversation waiting for a person (or already with someone) to `assignee`."""
    if assignee is None or not assignee.is_active or not assignee.is_staff:
        raise DeskRefusal(_("Choose an active staff member."))
    if not assignee.has_perm(CHANGE):
        raise DeskRefusal(_("That staff member may not answer conversations."))
    done = _changed(conversation.pk, Q(status=OPEN, handler=HUMAN), assigned_to=assignee)
    _refuse_unless(done, _("Only an open conversation with a person can be assigned."))
    notify_staff_on_commit("assigned", conversation.pk, handler=HUMAN, assigned_to=assignee.pk)
    logger.info("conversation %s assigned to staff %s by %s", conversation.pk, assignee.pk, user.pk)


def staff_member(user_id) -> object | None:
    try:
        return get_user_model().objects.filter(pk=int(user_id)).first()
    except (TypeError, ValueError):
        return None


def hand_back(conversation: Conversation, user) -> None:
    """The assistant answers again; a later handoff starts its own wait (handoff_at)."""
    done = _changed(
        conversation.pk,
        Q(status=OPEN, handler=HUMAN),
        handler=BOT,
        assigned_to=None,
        handoff_reason="",
        handoff_source="",
        handoff_at=None,
    )
    _refuse_unless(done, _("Only an open conversation with a person can go back to the assistant."))
    notify_staff_on_commit("handback", conversation.pk, handler=BOT)
    logger.info("conversation %s handed back to the assistant by %s", conversation.pk, user.pk)


def resolve(conversation: Conversation, user) -> None:
    now = timezone.now()
    done = _changed(conversation.pk, Q(status=OPEN), status=CLOSED, closed_at=now, closed_by=user)
    _refuse_unless(done, _("This conversation is already resolved."))
    notify_staff_on_commit("resolved", conversation.pk, closed_by=user.pk)
    logger.info("conversation %s resolved by staff %s", conversation.pk, user.pk)
    transaction.on_commit(lambda: _tell_customer(conversation, get_runtime().resolve_message))


def reply_problem(conversation: Conversation, text: str) -> str:
    """Why a staff reply cannot go out now; empty when it can."""
    if conversation.status != OPEN:
        return _("This conversation is resolved.")
    if conversation.handler != HUMAN:
        return _("Take the conversation over first, so the assistant does not answer as well.")
    if not within_reply_window(conversation.last_inbound_at):
        return _(
            "The customer's last message is more than 24 hours old: WhatsApp accepts no "
            "free-form reply until they write again."
        )
    if not text:
        return _("Type a reply.")
    if len(text) > WHATSAPP_TEXT_MAX:
        return _("WhatsApp refuses messages over %(max)s characters.") % {"max": WHATSAPP_TEXT_MAX}
    return ""


def reply(conversation: Conversation, user, text: str) -> Message:
    """Send a staff reply; the first one records the first response time and, if nobody had
    the conversation, assigns it to the sender."""
    text = (text or "").strip()
    problem = reply_problem(conversation, text)
    if problem:
        raise DeskRefusal(problem)
    try:
        sent = sender.send_text(conversation, text, kind=Message.Kind.STAFF)
    except sender.SendError as exc:
        raise DeskRefusal(_("Not sent: %(error)s") % {"error": exc}) from exc
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk, first_staff_reply_at=None).update(
        first_staff_reply_at=now
    )
    Conversation.objects.filter(pk=conversation.pk, assigned_to=None).update(assigned_to=user)
    notify_staff_on_commit("message", conversation.pk, message_id=sent.pk, kind="staff")
    return sent


def add_note(conversation: Conversation, user, text: str) -> StaffNote:
    text = (text or "").strip()
    if not text:
        raise DeskRefusal(_("Type a note."))
    if len(text) > NOTE_MAX:
        raise DeskRefusal(_("Notes have at most %(max)s characters.") % {"max": NOTE_MAX})
    note = StaffNote.objects.create(conversation=conversation, author=user, text=text)
    notify_staff_on_commit("message", conversation.pk, note_id=note.pk, kind="note")
    return note
