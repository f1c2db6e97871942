import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.turn_model import Turn


class Customer(models.Model):
    """A WhatsApp customer, keyed on the normalised number (see conversations.phone)."""

    wa_id = models.CharField(_("WhatsApp number"), max_length=32, unique=True)
    # The number exactly as WhatsApp last sent it (with or without the ninth digit): replies go here.
    reply_wa_id = models.CharField(_("reply number"), max_length=32, blank=True)
    profile_name = models.CharField(_("name"), max_length=256, blank=True)
    # CPF (11 digits) or CNPJ (14 characters, alphanumeric since 2026), compact and upper case.
    document = models.CharField(_("CPF/CNPJ"), max_length=14, blank=True, db_index=True)
    first_seen_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [models.Index(fields=["-last_seen_at"], name="customer_last_seen")]
        # Staff without it see the document masked, also on the customer's own admin page.
        permissions = [
            ("view_full_document", _("Can see full CPF/CNPJ")),
            ("export_customer_data", _("Can export a customer's data (LGPD)")),
            ("erase_customer_data", _("Can erase a customer's data (LGPD)")),
        ]

    def __str__(self):
        from conversations.masking import mask_phone

        return self.profile_name or mask_phone(self.wa_id)


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Resolved")

    class Handler(models.TextChoices):
        BOT = "bot", _("Assistant")
        HUMAN = "human", _("Person")

    class HandoffSource(models.TextChoices):
        TOOL = "tool", _("The assistant (transfer_to_human)")
        FALLBACK = "fallback", _("Fallback after an LLM failure")
        STAFF = "staff", _("A staff member")
        WINDOW = "window", _("Outside WhatsApp's 24-hour window")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="conversations", verbose_name=_("customer")
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.OPEN
    )
    handler = models.CharField(
        _("handled by"), max_length=8, choices=Handler.choices, default=Handler.BOT
    )
    # Why the bot handed over (e.g. the LLM failed); blank when a person took over by choice.
    handoff_reason = models.CharField(_("handoff reason"), max_length=255, blank=True)
    # Who or what asked for the handoff, and when the customer began waiting for a person.
    handoff_source = models.CharField(
        _("handed over by"), max_length=12, choices=HandoffSource.choices, blank=True
    )
    handoff_at = models.DateTimeField(_("handed over at"), null=True, blank=True)
    # The staff member answering it (blank: waiting in the queue), and when staff first answered.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assigned to"),
    )
    first_staff_reply_at = models.DateTimeField(_("first staff reply"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="closed_conversations",
        verbose_name=_("resolved by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_inbound_at = models.DateTimeField(_("customer's last message"), null=True, blank=True)
    closed_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="open"),
                name="one_open_conversation_per_customer",
            )
        ]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="conversation_status_updated"),
            # The dashboard's bot report and staff first response (issue 14).
            models.Index(fields=["created_at"], name="conversation_created"),
            models.Index(
                fields=["first_staff_reply_at"],
                name="conversation_staff_replied",
                condition=Q(first_staff_reply_at__isnull=False),
            ),
        ]

    def __str__(self):
        return _("Conversation %(id)s (%(status)s, %(handler)s)") % {
            "id": self.pk,
            "status": self.get_status_display(),
            "handler": self.get_handler_display(),
        }


def media_path(message: "Message", filename: str) -> str:
    """A path nobody can guess: the customer's media are never public."""
    suffix = Path(filename).suffix.lower()[:8]
    return f"media/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{suffix}"


def handoff_fields(reason: str, source: str) -> dict:
    """A conversation's fields for a handoff: a person handles it, waiting since now (the engine,
    the sender and the delivery statuses all hand over this way)."""
    return {
        "handler": Conversation.Handler.HUMAN,
        "handoff_reason": reason[:255],
        "handoff_source": source,
        "handoff_at": timezone.now(),
    }


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "in", _("From the customer")
        OUTBOUND = "out", _("To the customer")

    class State(models.TextChoices):
        """Processing state of an inbound message; blank for outbound."""

        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        ANSWERED = "answered", _("Answered")
        FAILED = "failed", _("Failed")
        # Stored while a human handles the conversation: the bot never answers it.
        SKIPPED = "skipped", _("Not for the bot")

    class Delivery(models.TextChoices):
        """Delivery status of an outbound message, in the order it may only move forward."""

        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        """What an outbound message was; blank for inbound."""

        REPLY = "reply", _("Assistant reply")
        FALLBACK = "fallback", _("Fallback reply")
        NOTICE = "notice", _("Outage notice")
        STAFF = "staff", _("Staff")
        HANDOFF = "handoff", _("Handoff message")

    class MediaStatus(models.TextChoices):
        """Where an inbound media message's file is; blank for messages without media."""

        NONE = "", _("No media")
        PENDING = "pending", _("To download")
        STORED = "stored", _("Stored")
        FAILED = "failed", _("Download failed")
        # Documents: the name and caption are enough for the assistant; staff fetch the bytes.
        ON_DEMAND = "on_demand", _("Downloaded when staff open it")

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    # The WhatsApp message id (wamid); unique so a redelivered webhook stores nothing new.
    provider_id = models.CharField(
        _("WhatsApp id"), max_length=255, unique=True, null=True, blank=True
    )
    # SHA-256 of the inbound wamid, kept when erasure or retention empties provider_id (Meta's
    # ids encode the customer's number): a late redelivery of an erased message still meets a
    # unique value, and is stored nothing of, in the same one query (conversations.privacy.fields).
    wamid_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    type = models.CharField(_("type"), max_length=32, default="text")
    text = models.TextField(_("text"), blank=True)
    # A voice note's transcript, and the media file downloaded from the Cloud API (private).
    transcript = models.TextField(_("transcript"), blank=True)
    media_file = models.FileField(_("media file"), upload_to=media_path, max_length=255, blank=True)
    # The Cloud API's media id and what the webhook declared (mime type, sha256), then what the
    # download found (size); the status and attempts let a failed download be retried later,
    # apart from the message's dedupe (a redelivery stores nothing new).
    media_id = models.CharField(max_length=128, blank=True)
    media_mime_type = models.CharField(max_length=100, blank=True)
    media_sha256 = models.CharField(max_length=100, blank=True)
    media_size = models.PositiveIntegerField(null=True, blank=True)
    media_status = models.CharField(
        max_length=10, choices=MediaStatus.choices, blank=True, default=MediaStatus.NONE
    )
    media_attempts = models.PositiveSmallIntegerField(default=0)
    media_error = models.CharField(max_length=255, blank=True)
    raw = models.JSONField(_("raw payload"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=255, blank=True)
    turn = models.ForeignKey(
        Turn,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("turn"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, blank=True)
    delivery_status = models.CharField(
        _("delivery"), max_length=10, choices=Delivery.choices, blank=True
    )
    delivery_errors = models.JSONField(_("delivery errors"), default=list, blank=True)
    # When WhatsApp says the customer sent it (inbound) or when we handed it to WhatsApp (outbound).
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # When its content (conversations.privacy.fields) was erased or outlived the retention.
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["conversation", "created_at"], name="message_conversation_created"
            ),
            models.Index(fields=["conversation", "state"], name="message_conversation_state"),
            models.Index(
                fields=["state", "claimed_at"],
                name="message_inbound_work",
                condition=Q(state__in=["pending", "processing"]),
            ),
            # Every message and every turn asks for a conversation's pending messages (ingest,
            # peek, claim). This index answers exactly that, holds only the pending ones, and is
            # the planner's choice even on statistics that are stale or from an empty table:
            # otherwise it took message_inbound_work and read every pending message of everyone.
            models.Index(
                fields=["conversation", "created_at"],
                name="message_pending_by_conv",
                condition=Q(direction="in", state="pending"),
            ),
            # The dashboard's messages per hour and per kind (issue 14).
            models.Index(fields=["created_at", "direction", "kind"], name="message_created"),
            # The retention pass's work, oldest first, without reading what it already did.
            models.Index(
                fields=["created_at"],
                name="message_content_kept",
                condition=Q(redacted_at__isnull=True),
            ),
            models.Index(
                fields=["created_at"], name="message_media_kept", condition=~Q(media_file="")
            ),
        ]
        # The customers' voice notes, photos and documents, served only through the media view.
        permissions = [("view_media", _("Can see customers' media"))]

    def __str__(self):
        return _("Message %(id)s (%(type)s)") % {"id": self.pk, "type": self.type}


from conversations.desk_models import CannedReply, StaffNote  # noqa: E402
from conversations.privacy_models import PrivacyAudit  # noqa: E402
from conversations.report_models import HourlyRollup  # noqa: E402

# Defined in their own module, imported here so Django registers the model (and migrations find
# validate_notice_template where 0001 names it).
from conversations.runtime_settings import (  # noqa: E402
    WHATSAPP_TEXT_MAX,
    RuntimeSettings,
    validate_notice_template,
)

__all__ = [
    "WHATSAPP_TEXT_MAX",
    "CannedReply",
    "Conversation",
    "Customer",
    "HourlyRollup",
    "Message",
    "PrivacyAudit",
    "RuntimeSettings",
    "StaffNote",
    "Turn",
    "validate_notice_template",
]
