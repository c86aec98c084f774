"""Drops counted in memory, added to `DropTally` rows at most once per FLUSH_EVERY_SECONDS.

The request path and the forwarder call `drops_count` with what they dropped: it adds to
this process's pending counter and, when the interval has passed, writes the counter in
one short transaction. So a process writes at most once per interval, whatever its
traffic; a crash loses at most that interval's drops of that process.

The schedule reads the wall clock, not a monotonic one: a clock set back (or a test's
time travel) then flushes at once instead of waiting for the old due time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import date, timedelta

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from consent_service.proxy.models import REASON_MAX, DropTally

logger = logging.getLogger("consent_service.proxy")
FLUSH_EVERY_SECONDS = 30.0

_lock = threading.Lock()
_pending: Counter[tuple[date, str]] = Counter()
_last_flush = 0.0  # epoch seconds; 0: this process has not written yet
_day: tuple[float, float, date] = (0.0, 0.0, date.min)  # [start, end) of the day in epoch s


def drops_count(*, dropped: Mapping[str, int]) -> None:
    """Count `dropped` (reason -> events) for today, and write if the interval passed."""
    if dropped:
        day = _today(time.time())
        with _lock:
            for reason, count in dropped.items():
                if count:
                    _pending[(day, reason[:REASON_MAX])] += count
    drops_flush_due()


def _today(now: float) -> date:
    """The local day at `now`, recomputed only when `now` leaves the day last computed:
    converting to the time zone costs ~10 us, which the hot path should not pay."""
    global _day
    start, end, day = _day
    if start <= now < end:
        return day
    local = timezone.localtime(timezone.now(), timezone.get_default_timezone())
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    _day = (midnight.timestamp(), (midnight + timedelta(days=1)).timestamp(), local.date())
    return local.date()


def drops_flush_due() -> None:
    """Write the pending tallies if FLUSH_EVERY_SECONDS passed since this process last did."""
    if _pending:  # unlocked peek: the hot path pays only this when nothing was dropped
        drops_flush(force=False)


def drops_flush(*, force: bool = True) -> int:
    """Write the pending tallies (when due, unless `force`); answer how many rows were
    touched. A database error keeps them pending: counting never fails a request."""
    taken = _take(force)
    if not taken:
        return 0
    try:
        drop_tallies_add(counts=taken)
    except DatabaseError:
        logger.warning("drop tallies not written; kept for the next flush", exc_info=True)
        with _lock:
            _pending.update(taken)
        return 0
    return len(taken)


def _take(force: bool) -> dict[tuple[date, str], int]:
    """The pending tallies, emptied, if this thread is the one to write them."""
    global _last_flush
    now = time.time()
    with _lock:
        if not force and _last_flush <= now < _last_flush + FLUSH_EVERY_SECONDS:
            return {}
        taken = dict(_pending)
        _pending.clear()
        _last_flush = now
    return taken


def drop_tallies_add(*, counts: Mapping[tuple[date, str], int]) -> None:
    """Add `counts` to the rows, creating missing ones. An UPDATE with F() adds atomically
    on every backend; a row another process created first turns our INSERT into an
    IntegrityError, and the UPDATE then finds it. Sorted, so two writers lock rows in the
    same order and cannot deadlock on PostgreSQL."""
    with transaction.atomic():
        for (day, reason), count in sorted(counts.items()):
            rows = DropTally.objects.filter(day=day, reason=reason)
            if rows.update(count=F("count") + count):
                continue
            try:
                with transaction.atomic():
                    DropTally.objects.create(day=day, reason=reason, count=count)
            except IntegrityError:
                rows.update(count=F("count") + count)


def drops_forget() -> None:
    """Forget what is pending and when this process last wrote (tests; stats.reset)."""
    global _last_flush
    with _lock:
        _pending.clear()
        _last_flush = 0.0
