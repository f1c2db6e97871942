"""The admin's "Painel" (`/admin/dashboard/`): the figures of conversations.staff.reports for the
last 24 hours, 7 days or 30 days, for superusers and whoever holds the permission
`conversations.view_dashboard` (the "Supervisão" group). The chart is server-side SVG: no script
and nothing from a CDN."""

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.staff import reports

PERMISSION = "conversations.view_dashboard"
CHART_WIDTH, CHART_HEIGHT = 720, 160
PERIOD_LABELS = {"24h": _("Last 24 hours"), "7d": _("Last 7 days"), "30d": _("Last 30 days")}


def hourly_chart(per_hour: list[dict]) -> dict:
    """Bars for messages in and out in each hour of the period, as SVG geometry."""
    peak = max([1, *(max(row["in"], row["out"]) for row in per_hour)])
    slot = CHART_WIDTH / max(1, len(per_hour))
    bars = []
    for index, row in enumerate(per_hour):
        hour = timezone.localtime(row["hour"])
        for offset, direction in ((0.0, "in"), (0.5, "out")):
            height = CHART_HEIGHT * row[direction] / peak
            bars.append(
                {
                    "x": round(index * slot + offset * slot, 2),
                    "y": round(CHART_HEIGHT - height, 2),
                    "width": round(max(slot / 2 - 0.2, 0.3), 2),
                    "height": round(height, 2),
                    "direction": direction,
                    "title": f"{hour:%d/%m %H}h: {row[direction]}",
                }
            )
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "bars": bars, "peak": peak}


def _percent(rate):
    return None if rate is None else round(rate * 100, 1)


@permission_required(PERMISSION, raise_exception=True)
def dashboard_view(request):
    period = request.GET.get("period", "24h")
    if period not in reports.PERIODS:
        period = "24h"
    report = reports.build_report(period)
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "report": report,
        "live": report.live,
        "period": period,
        "periods": [(key, PERIOD_LABELS[key]) for key in reports.PERIODS],
        "chart": hourly_chart(report.per_hour),
        "resolution_pct": _percent(report.resolution_rate),
        "handoff_pct": _percent(report.handoff_rate),
        "lost_lock_pct": _percent(report.lost_lock_rate),
        "lock_limit_pct": _percent(reports.LOCK_TIMEOUT_LIMIT),
        "cache_hit_pct": _percent(report.crm_cache.get("hit_rate")),
        "cache_target_pct": _percent(reports.CACHE_HIT_TARGET),
    }
    return TemplateResponse(request, "admin/conversations/dashboard/dashboard.html", context)
