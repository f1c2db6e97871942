"""Customers' media for staff: the one way to a stored voice note, photo or document. Media is
never public: the view wants a logged-in staff member with the `conversations.view_media`
permission, and answers with private, uncacheable, sandboxed responses. A document (or a media
whose download failed) is fetched from the Cloud API when staff first open it.

message_media_html() renders a message's media for any staff page (the customer's history, the
staff desk): an audio player with the transcript under it, a thumbnail opening the full photo,
a link to a document.
"""

import logging
import mimetypes
import time

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from conversations.engine.media_step import fetch_and_store
from conversations.models import Message
from conversations.runtime import get_runtime

logger = logging.getLogger(__name__)

MEDIA_PERMISSION = "conversations.view_media"
MediaStatus = Message.MediaStatus
# Shown in the page itself; anything else is offered as a download.
INLINE_KINDS = ("audio", "image")


@require_GET
@staff_member_required
def message_media(request, message_id: int):
    if not request.user.has_perm(MEDIA_PERMISSION):
        raise PermissionDenied
    message = get_object_or_404(
        Message.objects.defer("raw"), pk=message_id, direction=Message.Direction.INBOUND
    )
    if not message.media_id and not message.media_file:
        raise Http404(_("This message has no media."))
    if message.media_status != MediaStatus.STORED:
        runtime = get_runtime()
        deadline = time.monotonic() + runtime.media_timeout_seconds
        fetch_and_store(message, runtime, deadline, force=True)
    if message.media_status != MediaStatus.STORED or not message.media_file:
        raise Http404(_("The media could not be downloaded from WhatsApp."))
    try:
        stored = message.media_file.storage.open(message.media_file.name, "rb")
    except OSError:
        logger.warning("message %s: stored media missing", message.pk)
        raise Http404(_("The stored media is missing.")) from None
    inline = message.type in INLINE_KINDS
    response = FileResponse(
        stored,
        content_type=message.media_mime_type or "application/octet-stream",
        as_attachment=not inline,
        filename=_download_name(message),
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _download_name(message: Message) -> str:
    extension = mimetypes.guess_extension(message.media_mime_type or "") or ""
    return f"{message.type}-{message.pk}{extension}"


def message_media_html(message: Message) -> SafeString:
    """A message's media for a staff page ("" for a message without media). The links go to
    message_media, which checks the permission on every request."""
    if not message.media_status:
        return SafeString("")
    url = reverse("message-media", args=[message.pk])
    failed = ""
    if message.media_status == MediaStatus.FAILED:
        failed = format_html(
            '<div class="media-failed" title="{}">{}</div>',
            message.media_error,
            _("Download failed; opening it tries again."),
        )
    if message.type == "audio":
        transcript = message.transcript or _("(no transcript)")
        return format_html(
            '<div class="message-media"><audio controls preload="none" src="{}"></audio>'
            '<div class="media-transcript">{}: {}</div>{}</div>',
            url,
            _("Transcript"),
            transcript,
            failed,
        )
    if message.type == "image":
        return format_html(
            '<div class="message-media"><a href="{}" target="_blank" rel="noopener">'
            '<img src="{}" alt="{}" loading="lazy" style="max-width: 160px; max-height: 160px">'
            "</a>{}</div>",
            url,
            url,
            _("Photo sent by the customer"),
            failed,
        )
    return format_html(
        '<div class="message-media"><a href="{}">{}</a>{}</div>',
        url,
        _("Open the document") if message.type == "document" else _("Open the file"),
        failed,
    )
