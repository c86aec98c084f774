"""The spool in the service's own database.

The request path appends with one raw INSERT (no ORM: it runs on every proxied request)
and answers once it commits: on SQLite in WAL mode with synchronous=NORMAL a commit
survives a SIGKILL of any of our processes; surviving power loss is the database's own
setting (PostgreSQL `synchronous_commit=on`, SQLite `synchronous=FULL`).

Forwarders claim due rows under a lease: `FOR UPDATE SKIP LOCKED` lets several claim side
by side on PostgreSQL; SQLite's IMMEDIATE transactions serialise the claims."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from consent_service.core.conf import conf
from consent_service.spool.models import DeadLetter, SpooledRequest

_TABLE = SpooledRequest._meta.db_table
_INSERT = (
    f"INSERT INTO {_TABLE} (received_at, sent_at, ip, subject_id, event_count, events,"
    " attempts, next_attempt_at, leased_by, last_error) VALUES (%s, %s, %s, %s, %s, %s, 0, %s,"
    " '', '')"
)
_COUNTS = f"SELECT COUNT(*), MIN(received_at) FROM {_TABLE}"
FULLNESS_CHECK_SECONDS = 1.0  # a COUNT per process per second, not per request


@dataclass(frozen=True)
class Entry:
    """What one request kept for one subject: its rebuilt events as a JSON array."""

    subject_id: int
    events: str
    event_count: int


@dataclass(frozen=True)
class Claimed:
    id: int
    received_at: float
    sent_at: str
    ip: str
    subject_id: int
    events: str
    attempts: int


@dataclass(frozen=True)
class Refused:
    """One event PostHog refused on its own, for the dead letters."""

    received_at: float
    subject_id: int
    event: str
    status_code: int
    reason: str


def spool_append(*, entries: list[Entry], received_at: float, sent_at: str, ip: str) -> None:
    rows = [
        (received_at, sent_at, ip, e.subject_id, e.event_count, e.events, received_at)
        for e in entries
    ]
    alias = router.db_for_write(SpooledRequest)
    if len(rows) == 1:  # the browser's case: one statement, its own commit
        with connections[alias].cursor() as cursor:
            cursor.execute(_INSERT, rows[0])
        return
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.executemany(_INSERT, rows)


@dataclass
class _Fullness:
    checked_at: float = 0.0
    full: bool = False


_fullness = _Fullness()


def spool_full() -> bool:
    """Too many requests waiting, or the oldest waiting too long: the proxy answers 503
    and posthog-js retries later. Checked at most once a second per process."""
    now = time.monotonic()
    if now - _fullness.checked_at >= FULLNESS_CHECK_SECONDS:
        depth, oldest = spool_counts()
        settings = conf()
        too_old = oldest is not None and time.time() - oldest > settings.spool_max_age_seconds
        _fullness.full = depth >= settings.spool_max_requests or too_old
        _fullness.checked_at = now
    return _fullness.full


def spool_fullness_forget() -> None:
    _fullness.checked_at = 0.0


def spool_counts() -> tuple[int, float | None]:
    """Requests waiting, and when the oldest was received (epoch seconds)."""
    alias = router.db_for_read(SpooledRequest)
    with connections[alias].cursor() as cursor:
        cursor.execute(_COUNTS)
        depth, oldest = cursor.fetchone()
    return int(depth), oldest


def spool_claim(*, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Due rows, and rows whose forwarder died (lease expired), leased to `worker`."""
    now = time.time()
    alias = router.db_for_write(SpooledRequest)
    due = SpooledRequest.objects.using(alias).filter(next_attempt_at__lte=now)
    with transaction.atomic(using=alias):
        rows = list(
            due.exclude(lease_until__gt=now)
            .select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "received_at", "sent_at", "ip", "subject_id", "events", "attempts")[
                :limit
            ]
        )
        SpooledRequest.objects.using(alias).filter(id__in=[row[0] for row in rows]).update(
            lease_until=now + lease_seconds, leased_by=worker
        )
    return [Claimed(*row) for row in rows]


def spool_done(*, ids: Iterable[int]) -> None:
    """Delivered, dropped or dead-lettered: gone from the spool."""
    SpooledRequest.objects.filter(id__in=list(ids)).delete()


def spool_retry(*, ids: Iterable[int], delay: float, error: str) -> None:
    """Not delivered this time: due again after `delay` seconds, attempt counted."""
    SpooledRequest.objects.filter(id__in=list(ids)).update(
        attempts=F("attempts") + 1,
        next_attempt_at=time.time() + delay,
        lease_until=None,
        leased_by="",
        last_error=error[:1000],
    )


def spool_dead_letter(*, refused: list[Refused]) -> None:
    DeadLetter.objects.bulk_create(
        DeadLetter(
            received_at=item.received_at,
            subject_id=item.subject_id,
            event=item.event,
            status_code=item.status_code,
            reason=item.reason[:1000],
        )
        for item in refused
    )


def spool_purge_subject(*, subject_id: int) -> int:
    """Erasure: the subject's waiting events and dead letters go, unsent."""
    waiting, _ = SpooledRequest.objects.filter(subject_id=subject_id).delete()
    dead, _ = DeadLetter.objects.filter(subject_id=subject_id).delete()
    return waiting + dead


def spool_oldest() -> float | None:
    """When the oldest waiting request was received (epoch seconds), None when empty."""
    return spool_counts()[1]


def dead_letters_expire(*, older_than_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = DeadLetter.objects.filter(created_at__lt=cutoff).delete()
    return deleted
