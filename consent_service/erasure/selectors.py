"""Reads of erasure requests for the layers that show them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from consent_service.erasure.models import OVERDUE_AFTER, ErasureRequest
from consent_service.ledger.chain import timestamp

if TYPE_CHECKING:
    from consent_service.ledger.models import Subject


def subject_erasures(subject: Subject) -> list[dict[str, Any]]:
    """GDPR Art. 17 requests for the subject, oldest first, with every call to PostHog:
    the erasure section of the subject's proof export."""
    requests = (
        ErasureRequest.objects.filter(subject=subject)
        .prefetch_related("calls")
        .order_by("created_at", "pk")
    )
    return [
        {
            "id": erasure.pk,
            "reason": erasure.reason,
            "status": erasure.status,
            "outcome": erasure.outcome,
            "created_at": _iso(erasure.created_at),
            "completed_at": _iso(erasure.completed_at),
            "requested_by_label": erasure.requested_by_label,
            "distinct_ids": erasure.distinct_ids,
            "calls": [
                {
                    "method": call.method,
                    "path": call.path,
                    "status_code": call.status_code,
                    "verdict": call.verdict,
                    "at": _iso(call.at),
                }
                for call in erasure.calls.all()
            ],
        }
        for erasure in requests
    ]


def _iso(value: datetime | None) -> str | None:
    return timestamp(value) if value else None


# --- reports ---------------------------------------------------------------------------

TOOK = ExpressionWrapper(F("completed_at") - F("created_at"), output_field=DurationField())


@dataclass(frozen=True)
class ErasureDay:
    day: date
    requested: int
    done: int
    slowest: timedelta | None  # of the requests done that day


@dataclass(frozen=True)
class ErasureTimeliness:
    done: int  # requests done since the window opened
    p50: timedelta | None
    p95: timedelta | None
    overdue: int  # not done OVERDUE_AFTER after they were asked, now, whatever the window
    days: list[ErasureDay]


def erasure_timeliness(*, since: datetime) -> ErasureTimeliness:
    """How fast requests done since `since` went from asked to done, per day and as
    percentiles. The percentiles are nearest-rank, each one ORDER BY ... OFFSET query:
    SQLite has no percentile_cont, and this reads one row, not every duration."""
    done = _done_since(since)
    count = done.count()
    return ErasureTimeliness(
        done=count,
        p50=_nearest_rank(done, count, 0.50),
        p95=_nearest_rank(done, count, 0.95),
        overdue=ErasureRequest.objects.exclude(status=ErasureRequest.Status.SUCCEEDED)
        .filter(created_at__lt=timezone.now() - OVERDUE_AFTER)
        .count(),
        days=_erasure_days(since, done),
    )


def _done_since(since: datetime) -> QuerySet[ErasureRequest]:
    return ErasureRequest.objects.filter(
        status=ErasureRequest.Status.SUCCEEDED, completed_at__gte=since
    )


def _nearest_rank(done: QuerySet[ErasureRequest], count: int, share: float) -> timedelta | None:
    if not count:
        return None
    rank = max(math.ceil(share * count), 1)
    ranked = done.order_by(TOOK.asc(), "pk").values_list(TOOK, flat=True)
    took: timedelta = ranked[rank - 1]
    return took


def _erasure_days(since: datetime, done: QuerySet[ErasureRequest]) -> list[ErasureDay]:
    asked = (
        ErasureRequest.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
    )
    finished = (
        done.annotate(day=TruncDate("completed_at"))
        .values("day")
        .annotate(n=Count("pk"), slowest=Max(TOOK))
    )
    requested = {row["day"]: row["n"] for row in asked}
    completed = {row["day"]: (row["n"], row["slowest"]) for row in finished}
    return [
        ErasureDay(day, requested.get(day, 0), *completed.get(day, (0, None)))
        for day in sorted(requested.keys() | completed.keys())
    ]
