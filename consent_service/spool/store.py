"""The spool's one entry point: the proxy appends, the forwarder claims and settles, erasure
purges. `CONSENT_SPOOL_BACKEND` picks where it lives:

- `database` (default): the service's own database (database.py). One host, or several
  hosts sharing a PostgreSQL database.
- `redis`: a Redis stream (redis_streams.py) at `CONSENT_SPOOL_REDIS_URL`, for several
  hosts and forwarders; only with Redis persistence on (AOF), or a restart loses it.

Dead letters stay in the database whatever the backend: they are rare and inspected there.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone

from consent_service.core.conf import conf
from consent_service.spool.models import DeadLetter

FULLNESS_CHECK_SECONDS = 1.0  # a count per process per second, not per request


@dataclass(frozen=True)
class Entry:
    """What one request kept for one subject: its rebuilt events as a JSON array."""

    subject_id: int
    events: str
    event_count: int


@dataclass(frozen=True)
class Claimed:
    """A spooled request leased to one forwarder. `id`: the backend's key for it."""

    id: int | str
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


class Backend(Protocol):
    def append(self, *, entries: list[Entry], received_at: float, sent_at: str, ip: str) -> None:
        """Durable when it returns: the proxy acknowledges right after."""

    def counts(self) -> tuple[int, float | None]:
        """Requests waiting, and when the oldest was received (epoch seconds)."""

    def claim(self, *, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
        """Due requests, and those whose forwarder died (lease expired), leased to `worker`."""

    def done(self, *, claimed: list[Claimed]) -> None:
        """Delivered, dropped or dead-lettered: gone."""

    def retry(self, *, claimed: list[Claimed], delay: float, error: str) -> None:
        """Not delivered this time: due again after `delay` seconds, attempt counted."""

    def purge_subject(self, *, subject_id: int) -> int:
        """Erasure: the subject's waiting requests go, unsent. Returns how many."""

    def after_round(self) -> None:
        """The forwarder's housekeeping between rounds."""


@functools.cache
def backend() -> Backend:
    if conf().spool_backend == "redis":
        from consent_service.spool.redis_streams import RedisStreamBackend

        return RedisStreamBackend(conf().spool_redis_url)
    from consent_service.spool.database import DatabaseBackend

    return DatabaseBackend()


@receiver(setting_changed)
def _reset_backend(**kwargs: object) -> None:
    backend.cache_clear()


def spool_append(*, entries: list[Entry], received_at: float, sent_at: str, ip: str) -> None:
    backend().append(entries=entries, received_at=received_at, sent_at=sent_at, ip=ip)


def spool_counts() -> tuple[int, float | None]:
    return backend().counts()


def spool_oldest() -> float | None:
    """When the oldest waiting request was received (epoch seconds), None when empty."""
    return spool_counts()[1]


def spool_claim(*, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
    return backend().claim(worker=worker, limit=limit, lease_seconds=lease_seconds)


def spool_done(*, claimed: list[Claimed]) -> None:
    if claimed:
        backend().done(claimed=claimed)


def spool_retry(*, claimed: list[Claimed], delay: float, error: str) -> None:
    if claimed:
        backend().retry(claimed=claimed, delay=delay, error=error)


def spool_after_round() -> None:
    backend().after_round()


def spool_purge_subject(*, subject_id: int) -> int:
    """Erasure: the subject's waiting events and dead letters go, unsent."""
    waiting = backend().purge_subject(subject_id=subject_id)
    dead, _ = DeadLetter.objects.filter(subject_id=subject_id).delete()
    return waiting + dead


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


def dead_letters_count() -> int:
    return DeadLetter.objects.count()


def dead_letters_expire(*, older_than_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = DeadLetter.objects.filter(created_at__lt=cutoff).delete()
    return deleted
