from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutageQuerySet(models.QuerySet):
    def active(self):
        """Started and not resolved."""
        return self.filter(resolved_at__isnull=True, started_at__lte=timezone.now())


def normalise_regions(regions) -> list[str]:
    """Trimmed, single-spaced region names, case-insensitively unique, in the given order.

    Raises ValidationError unless `regions` is a non-empty list of non-empty strings.
    """
    if not isinstance(regions, list) or not regions:
        raise ValidationError("Give at least one affected region, as a list of names.")
    names, seen = [], set()
    for region in regions:
        if not isinstance(region, str) or not region.strip():
            raise ValidationError("Every region must be a non-empty name.")
        name = " ".join(region.split())
        if len(name) > 100:
            raise ValidationError(f"Region names have at most 100 characters: {name[:20]}...")
        if name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name)
    return names


class Outage(models.Model):
    """A massive failure ("falha massiva") affecting every customer in some regions."""

    title = models.CharField(_("title"), max_length=200)
    message = models.TextField(
        _("message"),
        help_text=_(
            "Told to affected customers, after the notice template from the runtime settings."
        ),
    )
    regions = models.JSONField(
        _("regions"),
        default=list,
        help_text=_(
            'Affected regions as the CRM names them, e.g. ["Centro", "Zona Norte"]; '
            "matched ignoring upper and lower case."
        ),
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    expected_end_at = models.DateTimeField(_("expected end"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = OutageQuerySet.as_manager()

    class Meta:
        verbose_name = _("outage")
        verbose_name_plural = _("outages")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(
                fields=["started_at"],
                name="outage_active",
                condition=Q(resolved_at__isnull=True),
            )
        ]

    def __str__(self):
        return self.title

    def clean(self):
        self.regions = normalise_regions(self.regions)
        if not (self.message or "").strip():
            raise ValidationError({"message": "The customer-facing message cannot be empty."})
        if self.expected_end_at and self.started_at and self.expected_end_at <= self.started_at:
            raise ValidationError({"expected_end_at": "The expected end must be after the start."})

    @property
    def is_active(self) -> bool:
        return self.resolved_at is None and self.started_at <= timezone.now()

    def affects(self, regions) -> bool:
        """Does this outage cover any of `regions` (case-insensitively)?"""
        mine = {" ".join(str(r).split()).casefold() for r in self.regions}
        return any(" ".join(str(r).split()).casefold() in mine for r in regions)

    def resolve(self) -> bool:
        """Mark resolved now; False when it already was (another request got there first)."""
        now = timezone.now()
        updated = Outage.objects.filter(pk=self.pk, resolved_at__isnull=True).update(
            resolved_at=now
        )
        if updated:
            self.resolved_at = now
        else:
            self.refresh_from_db(fields=["resolved_at"])
        return bool(updated)

    def as_dict(self) -> dict:
        return {
            "id": self.pk,
            "title": self.title,
            "message": self.message,
            "regions": list(self.regions),
            "started_at": self.started_at.isoformat(),
            "expected_end": self.expected_end_at.isoformat() if self.expected_end_at else None,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


class OutageNotice(models.Model):
    """The outage notice went to this conversation: at most one per (outage, conversation)."""

    outage = models.ForeignKey(
        Outage, on_delete=models.CASCADE, related_name="notices", verbose_name=_("outage")
    )
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="outage_notices",
        verbose_name=_("conversation"),
    )
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("outage notice")
        verbose_name_plural = _("outage notices")
        constraints = [
            models.UniqueConstraint(
                fields=["outage", "conversation"], name="one_notice_per_outage_conversation"
            )
        ]

    def __str__(self):
        return f"Notice of outage {self.outage_id} in conversation {self.conversation_id}"


class Ticket(models.Model):
    """A ticket the assistant opened in the CRM, kept on our side: the CRM's protocol, what and
    where, and the conversation it came from. One per idempotency key, like in the CRM."""

    class Category(models.TextChoices):
        NO_CONNECTION = "no_connection", _("No connection")
        SLOW_CONNECTION = "slow_connection", _("Slow connection")
        INTERMITTENT = "intermittent", _("Intermittent connection")
        BILLING = "billing", _("Billing")
        OTHER = "other", _("Other")

    protocol = models.CharField(_("protocol"), max_length=64)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    point_id = models.CharField(_("installation point"), max_length=64)
    description = models.TextField(_("description"), blank=True)
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("conversation"),
    )
    # From the conversation, the batch's first message and the point: a retry, or a re-run of
    # the batch after a worker died, sends the CRM the same key and gets the same ticket.
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("opened at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")

    def __str__(self):
        return self.protocol
