"""Reads of what the proxy recorded, for the layers that show it."""

from __future__ import annotations

from datetime import date

from consent_service.proxy.models import DropTally


def drops_by_day(*, since: date) -> list[tuple[date, str, int]]:
    """(day, reason, events) from `since` on, as the processes last wrote them: each
    process's latest ~30 s may still be in its memory (drop_tallies.py)."""
    rows = DropTally.objects.filter(day__gte=since, count__gt=0).order_by("day", "reason")
    return list(rows.values_list("day", "reason", "count"))
