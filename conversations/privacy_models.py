"""PrivacyAudit: the trail of the LGPD operations (conversations.privacy). A model of the
conversations app (conversations.models re-exports it)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PrivacyAudit(models.Model):
    """One LGPD operation (export, erase, retention pass): who, when, how many rows and files.
    Never personal data: the customer is named by id only, the counts are numbers."""

    class Action(models.TextChoices):
        EXPORT = "export", _("Export")
        ERASE = "erase", _("Erase")
        PURGE = "purge", _("Retention pass")

    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    # The staff member's user name, or the command ("manage.py erase_customer").
    actor = models.CharField(_("by"), max_length=150)
    customer_id = models.BigIntegerField(_("customer id"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("privacy audit")
        verbose_name_plural = _("privacy audits")

    def __str__(self):
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"
