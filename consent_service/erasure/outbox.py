"""Creating erasure requests. Always inside the transaction of the change that causes
them (the outbox pattern), so a crash between the two cannot lose one."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from consent_service.core.conf import conf
from consent_service.erasure.models import ErasureRequest
from consent_service.ledger.selectors import subject_distinct_ids
from consent_service.ledger.user_keys import user_key

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from consent_service.ledger.models import Subject


def erasure_request_create(
    *,
    subject: Subject,
    reason: str,
    requested_by: User | None = None,
    label: str = "",
    note: str = "",
) -> ErasureRequest:
    """One active request per subject: a second trigger joins the one already waiting."""
    distinct_ids = subject_distinct_ids(subject_id=subject.pk)
    active = (
        ErasureRequest.objects.select_for_update()
        .filter(subject=subject, status__in=ErasureRequest.ACTIVE)
        .first()
    )
    if active is not None:
        active.distinct_ids = sorted(set(active.distinct_ids) | set(distinct_ids))
        active.note = "\n".join(filter(None, [active.note, f"joined by {reason}: {note}".strip()]))
        active.save(update_fields=["distinct_ids", "note"])
        return active
    return ErasureRequest.objects.create(
        subject=subject,
        user_id=user_key(subject.user_id),
        distinct_ids=distinct_ids,
        reason=reason,
        requested_by=requested_by,
        requested_by_label=label or _label(requested_by),
        note=note,
        next_attempt_at=timezone.now() + timedelta(seconds=conf().erasure_delay_seconds),
    )


def _label(user: User | None) -> str:
    return f"user:{user.pk}:{user.get_username()}" if user is not None else "system"
