"""HourlyRollup: the dashboard's figures of one settled hour (conversations.staff.rollups), kept
in the database so that losing Redis never makes a supervisor wait for a month of raw rows. A
model of the conversations app (conversations.models re-exports it)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class HourlyRollup(models.Model):
    hour = models.DateTimeField(_("hour"), unique=True)
    figures = models.JSONField(_("figures"), default=dict)
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    class Meta:
        verbose_name = _("hourly rollup")
        verbose_name_plural = _("hourly rollups")

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H}h"
