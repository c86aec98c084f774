"""Erasure: the worker's claim-process-finish cycle (requests are made in revocation.py).

Every state transition of an ErasureRequest happens here. Calls to PostHog are
idempotent, so delivery is at least once: a worker that dies mid-request leaves it
to another once the lease expires.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from consent_service.core import metrics
from consent_service.core.conf import conf
from consent_service.erasure.models import OVERDUE_AFTER, ErasureAttempt, ErasureRequest
from consent_service.erasure.posthog_calls import confirm, erase
from consent_service.ledger.pseudonymise import subject_pseudonymise
from consent_service.posthog.client import ApiCall, Verdict
from consent_service.spool.store import spool_oldest

logger = logging.getLogger("consent_service.erasure")
MISCONFIGURED = "configuration failure"


def erasure_claim(*, worker: str, limit: int = 10) -> list[ErasureRequest]:
    """Due requests, plus those whose worker died (lease expired), leased to `worker`.

    On PostgreSQL, SKIP LOCKED lets many workers claim side by side; the conditional
    UPDATE also makes a claim safe where row locks do not exist (SQLite).
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=conf().erasure_lease_seconds)
    due = Q(status=ErasureRequest.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=ErasureRequest.Status.IN_PROGRESS, lease_until__lt=now
    )
    oldest = spool_oldest()
    if oldest is not None:
        # Events acknowledged before the request may still be on their way to PostHog;
        # deleting first would let them recreate the person. Wait until they are out.
        due &= Q(created_at__lte=datetime.fromtimestamp(oldest, UTC))
    with transaction.atomic():
        candidates = list(
            ErasureRequest.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("next_attempt_at")
            .values_list("pk", "status", "lease_until")[:limit]
        )
        claimed = [
            pk
            for pk, status, lease in candidates
            if ErasureRequest.objects.filter(pk=pk, status=status, lease_until=lease).update(
                status=ErasureRequest.Status.IN_PROGRESS,
                lease_until=lease_until,
                leased_by=worker,
            )
        ]
    return list(ErasureRequest.objects.filter(pk__in=claimed).order_by("next_attempt_at"))


@dataclass(frozen=True)
class Processed:
    request_id: int
    status: str
    calls: int


def erasure_process(*, requests: list[ErasureRequest], worker: str) -> list[Processed]:
    """One round for each claimed request: call PostHog, record every call, move them on."""
    ids = {request.pk: list(request.distinct_ids) for request in requests}
    calls = erase({pk: values for pk, values in ids.items() if values})
    rounds = {request.pk: request.attempts + 1 for request in requests}
    _record_calls(worker, rounds, calls)
    with transaction.atomic():
        processed = [
            Processed(
                pk,
                _finish(pk, worker, rounds[pk], ids[pk], calls.get(pk, [])),
                len(calls.get(pk, [])),
            )
            for pk in ids
        ]
    for item in processed:
        metrics.ERASURE_OUTCOMES.labels("process", item.status).inc()
    return processed


def erasure_release(*, request: ErasureRequest, worker: str) -> None:
    """Hand back a claimed request the worker will not process (it is stopping)."""
    ErasureRequest.objects.filter(
        pk=request.pk, status=ErasureRequest.Status.IN_PROGRESS, leased_by=worker
    ).update(status=ErasureRequest.Status.PENDING, lease_until=None, leased_by="")


def erasure_expedite(*, requests: list[ErasureRequest]) -> list[ErasureRequest]:
    """Admin "process now": pending requests become due at once (no state change)."""
    pending = ErasureRequest.objects.filter(
        pk__in=[item.pk for item in requests], status=ErasureRequest.Status.PENDING
    )
    moved = list(pending)
    pending.update(next_attempt_at=timezone.now())
    return moved


def erasure_retry(*, request: ErasureRequest, note: str = "") -> bool:
    """Admin: give a failed request a fresh set of attempts, now."""
    updated = ErasureRequest.objects.filter(
        pk=request.pk, status=ErasureRequest.Status.FAILED
    ).update(
        status=ErasureRequest.Status.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        note=(request.note + f"\nretried: {note}").strip(),
    )
    return updated == 1


def erasure_confirm_due(*, worker: str, limit: int = 10) -> list[Processed]:
    """J17: some time after PostHog accepted a deletion, look again. A person found (an
    event in flight recreated it) is deleted again and looked for later; none found sets
    confirmed_at. Idempotent calls, so two workers confirming one request is harmless."""
    now = timezone.now()
    with transaction.atomic():
        pks = list(
            _unconfirmed()
            .filter(next_attempt_at__lte=now)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        lease = now + timedelta(seconds=conf().erasure_lease_seconds)
        ErasureRequest.objects.filter(pk__in=pks).update(next_attempt_at=lease)
    return [_confirm(request, worker) for request in ErasureRequest.objects.filter(pk__in=pks)]


def _confirm(request: ErasureRequest, worker: str) -> Processed:
    calls = confirm(list(request.distinct_ids))
    _record_calls(worker, {request.pk: request.attempts + 1}, {request.pk: calls})
    verdicts = {call.verdict for call in calls}
    now = timezone.now()
    fields: dict[str, Any] = {"attempts": request.attempts + 1}
    if verdicts <= {Verdict.GONE}:
        fields["confirmed_at"] = now
    elif verdicts <= {Verdict.GONE, Verdict.OK}:  # found, and deleted again
        fields["next_attempt_at"] = now + timedelta(seconds=conf().erasure_confirm_delay_seconds)
        fields["note"] = f"{request.note}\na person was still there: deleted again".strip()
    else:  # PostHog unreachable or misconfigured: look again later
        fields["next_attempt_at"] = now + timedelta(seconds=backoff_seconds(request.attempts))
    _unconfirmed().filter(pk=request.pk).update(**fields)
    status = "confirmed" if "confirmed_at" in fields else "unconfirmed"
    metrics.ERASURE_OUTCOMES.labels("confirm", status).inc()
    return Processed(request.pk, status, len(calls))


def _unconfirmed() -> QuerySet[ErasureRequest]:
    return ErasureRequest.objects.filter(
        status=ErasureRequest.Status.SUCCEEDED,
        outcome=ErasureRequest.Outcome.DELETED,
        confirmed_at=None,
    )


def erasure_report_overdue(*, limit: int = 100) -> int:
    """Log each request not done within OVERDUE_AFTER once, at ERROR, and stamp it."""
    now = timezone.now()
    due = _not_done().filter(created_at__lt=now - OVERDUE_AFTER, overdue_reported_at=None)
    reported = 0
    for pk, created_at, error in due.values_list("pk", "created_at", "last_error")[:limit]:
        if ErasureRequest.objects.filter(pk=pk, overdue_reported_at=None).update(
            overdue_reported_at=now
        ):
            logger.error(
                "erasure request %s is overdue: asked %s, not done (GDPR Art. 12(3) allows "
                "one month). Last error: %s",
                pk,
                created_at.isoformat(),
                error or "none",
            )
            reported += 1
    return reported


def erasure_counts() -> dict[str, int]:
    """Requests that need a person's attention, for alerts and metrics."""
    not_done = _not_done()
    return {
        "overdue": not_done.filter(created_at__lt=timezone.now() - OVERDUE_AFTER).count(),
        "misconfigured": not_done.filter(last_error__startswith=MISCONFIGURED).count(),
        "failed": ErasureRequest.objects.filter(status=ErasureRequest.Status.FAILED).count(),
    }


def erasure_status_counts() -> dict[str, int]:
    """Requests by status, every status named (zero included), for metrics."""
    rows = ErasureRequest.objects.order_by().values_list("status").annotate(Count("pk"))
    found = dict(rows)
    return {status: found.get(status, 0) for status in ErasureRequest.Status.values}


def _not_done() -> QuerySet[ErasureRequest]:
    return ErasureRequest.objects.exclude(status=ErasureRequest.Status.SUCCEEDED)


def backoff_seconds(attempt: int) -> float:
    """Exponential, capped, with up to 20 % jitter so retries do not march in step."""
    settings = conf()
    delay = min(settings.erasure_backoff_base * 2 ** (attempt - 1), settings.erasure_backoff_cap)
    return float(delay * random.uniform(1.0, 1.2))


def _record_calls(worker: str, rounds: dict[int, int], calls: dict[int, list[ApiCall]]) -> None:
    ErasureAttempt.objects.bulk_create(
        ErasureAttempt(
            request_id=pk,
            round=rounds[pk],
            worker=worker,
            method=call.method,
            path=call.path,
            status_code=call.status,
            verdict=call.verdict,
            response=call.body,
            error=call.error,
            duration_ms=call.duration_ms,
        )
        for pk, request_calls in calls.items()
        for call in request_calls
    )


def _finish(pk: int, worker: str, round_number: int, ids: list[str], calls: list[ApiCall]) -> str:
    current = ErasureRequest.objects.select_for_update().get(pk=pk)
    if current.status != ErasureRequest.Status.IN_PROGRESS or current.leased_by != worker:
        return current.status  # our lease expired and another worker took it over
    current.attempts = round_number
    current.lease_until, current.leased_by = None, ""
    if sorted(current.distinct_ids) != sorted(ids):
        _reschedule(current, 0.0, "new ids joined while erasing; erasing again")
    else:
        _apply(current, calls)
    current.save()
    return current.status


def _apply(request: ErasureRequest, calls: list[ApiCall]) -> None:
    verdicts = {call.verdict for call in calls}
    if Verdict.FATAL in verdicts:
        _fail(request, _describe(next(c for c in calls if c.verdict is Verdict.FATAL)))
    elif Verdict.MISCONFIGURED in verdicts:
        _misconfigured(request, next(c for c in calls if c.verdict is Verdict.MISCONFIGURED))
    elif Verdict.RETRY in verdicts:
        # No attempt count ends it: a deadline does (erasure_report_overdue), loudly.
        retry = [c for c in calls if c.verdict is Verdict.RETRY]
        wait = max([backoff_seconds(request.attempts), *(c.retry_after or 0 for c in retry)])
        _reschedule(request, wait, _describe(retry[-1]))
    else:
        _succeed(request, calls)


def _succeed(request: ErasureRequest, calls: list[ApiCall]) -> None:
    request.status = ErasureRequest.Status.SUCCEEDED
    request.completed_at = timezone.now()
    request.last_error = ""
    if not calls:
        request.outcome = ErasureRequest.Outcome.NOTHING_TO_ERASE
    elif all(call.verdict is Verdict.GONE for call in calls):
        request.outcome = ErasureRequest.Outcome.ALREADY_GONE
    else:
        request.outcome = ErasureRequest.Outcome.DELETED  # accepted: looked at again later
        delay = timedelta(seconds=conf().erasure_confirm_delay_seconds)
        request.next_attempt_at = request.completed_at + delay
    if request.subject_id is not None:
        subject_pseudonymise(subject_id=request.subject_id)


def _misconfigured(request: ErasureRequest, call: ApiCall) -> None:
    """Not done, and not the request's fault: it waits (backing off) for a fixed setting."""
    error = f"{MISCONFIGURED} (check POSTHOG_PROJECT_ID and hosts): {_describe(call)}"
    if not request.last_error.startswith(MISCONFIGURED):  # once, not every round
        logger.error("erasure request %s: %s", request.pk, error)
    _reschedule(request, backoff_seconds(request.attempts), error)


def _reschedule(request: ErasureRequest, seconds: float, error: str) -> None:
    request.status = ErasureRequest.Status.PENDING
    request.next_attempt_at = timezone.now() + timedelta(seconds=seconds)
    request.last_error = error


def _fail(request: ErasureRequest, error: str) -> None:
    request.status = ErasureRequest.Status.FAILED
    request.last_error = error


def _describe(call: ApiCall) -> str:
    answer = f"HTTP {call.status}: {call.body[:300]}" if call.status else call.error
    return f"{call.method} {call.path} -> {answer}"
