"""Reads of erasure requests for the layers that show them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from consent_service.erasure.models import ErasureRequest
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
