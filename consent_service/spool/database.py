"""The spool in the service's own database (the default backend).

The request path appends with one raw INSERT (no ORM: it runs on every proxied request)
and the proxy answers once it commits: on SQLite in WAL mode with synchronous=NORMAL a
commit survives a SIGKILL of any of our processes; surviving power loss is the database's
own setting (PostgreSQL `synchronous_commit=on`, SQLite `synchronous=FULL`).

Forwarders claim due rows under a lease: `FOR UPDATE SKIP LOCKED` lets several claim side
by side on PostgreSQL; SQLite's IMMEDIATE transactions serialise the claims."""

from __future__ import annotations

import time

from django.db import OperationalError, connections, router, transaction
from django.db.models import F

from consent_service.spool.models import SpooledRequest
from consent_service.spool.store import Claimed, Entry

_TABLE = SpooledRequest._meta.db_table
_INSERT = (
    f"INSERT INTO {_TABLE} (received_at, sent_at, ip, subject_id, event_count, events,"
    " attempts, next_attempt_at, leased_by, last_error) VALUES (%s, %s, %s, %s, %s, %s, 0, %s,"
    " '', '')"
)
_DEPTH = f"SELECT COUNT(*) FROM {_TABLE}"
# By id, not MIN(received_at): no index on it (see models.py). Ids follow arrival to within
# the few milliseconds between a request's clock read and its INSERT.
_OLDEST = f"SELECT received_at FROM {_TABLE} ORDER BY id LIMIT 1"


class DatabaseBackend:
    def append(self, *, entries: list[Entry], received_at: float, sent_at: str, ip: str) -> None:
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

    def counts(self) -> tuple[int, float | None]:
        alias = router.db_for_read(SpooledRequest)
        with connections[alias].cursor() as cursor:
            cursor.execute(_DEPTH)
            (depth,) = cursor.fetchone()
            cursor.execute(_OLDEST)
            oldest = cursor.fetchone()
        return int(depth), oldest[0] if oldest else None

    def claim(self, *, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
        now = time.time()
        alias = router.db_for_write(SpooledRequest)
        rows = SpooledRequest.objects.using(alias)
        with transaction.atomic(using=alias):
            found = list(
                rows.filter(next_attempt_at__lte=now)
                .exclude(lease_until__gt=now)
                .select_for_update(skip_locked=True)
                .order_by("id")
                .values_list(
                    "id", "received_at", "sent_at", "ip", "subject_id", "events", "attempts"
                )[:limit]
            )
            rows.filter(id__in=[row[0] for row in found]).update(
                lease_until=now + lease_seconds, leased_by=worker
            )
        return [Claimed(*row) for row in found]

    def done(self, *, claimed: list[Claimed]) -> None:
        SpooledRequest.objects.filter(id__in=[item.id for item in claimed]).delete()

    def retry(self, *, claimed: list[Claimed], delay: float, error: str) -> None:
        SpooledRequest.objects.filter(id__in=[item.id for item in claimed]).update(
            attempts=F("attempts") + 1,
            next_attempt_at=time.time() + delay,
            lease_until=None,
            leased_by="",
            last_error=error[:1000],
        )

    def purge_subject(self, *, subject_id: int) -> int:
        deleted, _ = SpooledRequest.objects.filter(subject_id=subject_id).delete()
        return deleted

    def after_round(self) -> None:
        """SQLite: copy the WAL back into the database here, so the checkpoint (and its
        fsync) seldom falls on a proxied request's INSERT. PASSIVE: never waits for readers;
        SQLite's own automatic checkpoint stays on as the bound."""
        connection = connections[router.db_for_write(SpooledRequest)]
        if connection.vendor != "sqlite" or connection.in_atomic_block:
            return  # a checkpoint cannot run inside a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except OperationalError:
            pass  # busy: SQLite's automatic checkpoint remains the bound
