"""The staff reports: consent rates, withdrawals, erasure timeliness, drops at the proxy.

Each package's selector aggregates its own data per day in the database; this module
lays the days of the window side by side for the page and for the CSV exports.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from consent_service.erasure.selectors import ErasureTimeliness, erasure_timeliness
from consent_service.ledger.selectors import (
    PurposeDay,
    consent_rates_by_day,
    purpose_keys,
    withdrawals_by_day,
)
from consent_service.proxy.selectors import drops_by_day

WINDOWS = (7, 30, 90, 365)
DEFAULT_WINDOW = 30
REPORTS = ("consent", "withdrawals", "erasure", "erasure-summary", "drops")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets may run as a formula


class BadWindow(ValueError):
    pass


@dataclass(frozen=True)
class Reports:
    window: int
    days: list[date]  # oldest first, today last
    purposes: list[str]
    consent: dict[tuple[date, str], PurposeDay]
    withdrawals: dict[date, int]
    erasure: ErasureTimeliness
    reasons: list[str]
    drops: dict[tuple[date, str], int]

    def rate(self, day: date, purpose: str) -> float | None:
        """Percent of that day's decisions on the purpose that granted it (None: none)."""
        found = self.consent.get((day, purpose))
        return 100.0 * found.granted / found.decisions if found else None


def report_window(raw: str | None) -> int:
    """The window in days from the query string: one of WINDOWS, DEFAULT_WINDOW if absent."""
    if raw is None or raw == "":
        return DEFAULT_WINDOW
    if not raw.isdigit() or int(raw) not in WINDOWS:
        raise BadWindow(f"days must be one of {', '.join(map(str, WINDOWS))}.")
    return int(raw)


def reports_build(*, window: int) -> Reports:
    today = timezone.localdate()
    first = today - timedelta(days=window - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    purposes = purpose_keys()
    consent = consent_rates_by_day(since=since, purposes=purposes)
    drops = drops_by_day(since=first)
    return Reports(
        window=window,
        days=[first + timedelta(days=n) for n in range(window)],
        purposes=purposes,
        consent={(row.day, row.purpose): row for row in consent},
        withdrawals=dict(withdrawals_by_day(since=since)),
        erasure=erasure_timeliness(since=since),
        reasons=sorted({reason for _, reason, _ in drops}),
        drops={(day, reason): count for day, reason, count in drops},
    )


# --- CSV --------------------------------------------------------------------------------


def report_rows(name: str, reports: Reports) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of one export: every day of the window, oldest first."""
    if name == "consent":
        header = ["day", "purpose", "decisions", "granted", "granted_percent"]
        rows = []
        for day in reports.days:
            for purpose in reports.purposes:
                found = reports.consent.get((day, purpose))
                rate = reports.rate(day, purpose)
                decisions, granted = (found.decisions, found.granted) if found else (0, 0)
                percent = "" if rate is None else f"{rate:.1f}"
                rows.append([day, purpose, decisions, granted, percent])
        return header, rows
    if name == "withdrawals":
        return ["day", "withdrawals"], [[d, reports.withdrawals.get(d, 0)] for d in reports.days]
    if name == "erasure":
        by_day = {row.day: row for row in reports.erasure.days}
        header = ["day", "requested", "done", "slowest_done_seconds"]
        return header, [_erasure_row(day, by_day.get(day)) for day in reports.days]
    if name == "erasure-summary":
        timeliness = reports.erasure
        return ["measure", "value"], [
            ["window_days", reports.window],
            ["done", timeliness.done],
            ["p50_seconds", _seconds(timeliness.p50)],
            ["p95_seconds", _seconds(timeliness.p95)],
            ["overdue_now", timeliness.overdue],
        ]
    if name == "drops":
        rows = [[day, reason, count] for (day, reason), count in sorted(reports.drops.items())]
        return ["day", "reason", "events"], rows
    raise KeyError(name)


def csv_response(
    *, filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([csv_cell(value) for value in header])
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return response


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula is quoted with a leading
    apostrophe (OWASP CSV injection); numbers and dates are left as they are."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _erasure_row(day: date, found: Any) -> list[Any]:
    if found is None:
        return [day, 0, 0, ""]
    return [day, found.requested, found.done, _seconds(found.slowest)]


def _seconds(value: timedelta | None) -> str:
    return "" if value is None else f"{value.total_seconds():.0f}"
