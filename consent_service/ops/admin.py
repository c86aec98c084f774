"""The reports page in whichever admin site the project runs: Operations > Reports.

Staff need `consent_ops.view_report` (superusers have it). The page and its CSV exports
are ModelAdmin URLs, so the site's admin_view wraps them: a visitor who is not staff is
sent to that site's login page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from consent_service.api.errors import ErrorBody, json_error
from consent_service.ops.charts import bar_chart, line_chart
from consent_service.ops.models import Report
from consent_service.ops.reports import (
    REPORTS,
    WINDOWS,
    BadWindow,
    Reports,
    csv_response,
    report_rows,
    report_window,
    reports_build,
)

if TYPE_CHECKING:  # the admin classes are generic to the type checker only
    ReportAdminBase = admin.ModelAdmin[Report]
else:
    ReportAdminBase = admin.ModelAdmin


@admin.register(Report)
class ReportAdmin(ReportAdminBase):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # No objects: only the page and its exports, under the names the index links to.
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="consent_ops_report_changelist"),
            path("<slug:name>.csv", wrap(self.csv_view), name="consent_ops_report_csv"),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            window = report_window(request.GET.get("days"))
        except BadWindow as exc:
            return json_error(request, 400, ErrorBody("validation_error", "invalid_days", str(exc)))
        reports = reports_build(window=window)
        context = {
            **self.admin_site.each_context(request),
            "title": "Reports",
            "opts": self.opts,
            "window": window,
            "windows": WINDOWS,
            "time_zone": timezone.get_current_timezone_name(),
            "csv": {name.replace("-", "_"): self._csv_url(name, window) for name in REPORTS},
            **_sections(reports),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/consent_ops/reports.html", context)

    def csv_view(self, request: HttpRequest, name: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if name not in REPORTS:
            return json_error(request, 404, ErrorBody("not_found", "no_such_report", name[:64]))
        try:
            window = report_window(request.GET.get("days"))
        except BadWindow as exc:
            return json_error(request, 400, ErrorBody("validation_error", "invalid_days", str(exc)))
        header, rows = report_rows(name, reports_build(window=window))
        filename = f"{name}-{window}d-{timezone.localdate().isoformat()}.csv"
        return csv_response(filename=filename, header=header, rows=rows)

    def _csv_url(self, name: str, window: int) -> str:
        url = reverse(
            f"{self.admin_site.name}:consent_ops_report_csv",
            kwargs={"name": name},
            current_app=self.admin_site.name,
        )
        return f"{url}?days={window}"


def _sections(reports: Reports) -> dict[str, Any]:
    days, keys = reports.days, reports.purposes
    erasure_days = {row.day: row for row in reports.erasure.days}
    return {
        "consent_chart": line_chart(
            days=days,
            series={key: [reports.rate(day, key) for day in days] for key in reports.purposes},
            title="Share of decisions that granted each purpose, per day",
        ),
        "consent_rows": [
            (day, [(reports.consent.get((day, key)), reports.rate(day, key)) for key in keys])
            for day in reversed(days)
            if any((day, key) in reports.consent for key in keys)
        ],
        "purposes": keys,
        "withdrawals_chart": bar_chart(
            days=days,
            series={"withdrawals": [reports.withdrawals.get(day, 0) for day in days]},
            title="Withdrawals per day",
            stacked=True,
        ),
        "withdrawal_rows": sorted(reports.withdrawals.items(), reverse=True),
        "withdrawals_total": sum(reports.withdrawals.values()),
        "erasure": reports.erasure,
        "erasure_p50": _duration(reports.erasure.p50),
        "erasure_p95": _duration(reports.erasure.p95),
        "erasure_chart": bar_chart(
            days=days,
            series={
                "requested": [getattr(erasure_days.get(day), "requested", 0) for day in days],
                "done": [getattr(erasure_days.get(day), "done", 0) for day in days],
            },
            title="Erasure requests asked and done per day",
            stacked=False,
        ),
        "erasure_rows": [
            (row.day, row.requested, row.done, _duration(row.slowest))
            for row in reversed(reports.erasure.days)
        ],
        "drops_chart": bar_chart(
            days=days,
            series={
                reason: [reports.drops.get((day, reason), 0) for day in days]
                for reason in reports.reasons
            },
            title="Events dropped at the proxy per day, by reason",
            stacked=True,
        ),
        "drop_rows": [
            (day, reason, count)
            for (day, reason), count in sorted(reports.drops.items(), reverse=True)
        ],
        "drops_total": sum(reports.drops.values()),
    }


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "–"
    seconds = int(value.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
