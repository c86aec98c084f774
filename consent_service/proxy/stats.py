"""What the proxy forwarded and dropped, per process, by reason (and as Prometheus counters,
which /metrics adds up across processes)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

from consent_service.core import metrics
from consent_service.proxy.drop_tallies import drops_count, drops_forget

logger = logging.getLogger("consent_service.proxy")

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def record(*, forwarded: int, dropped: Mapping[str, int], stripped: int = 0) -> None:
    """`stripped`: linked ids removed from forwarded events (no merge with them)."""
    with _lock:
        _counts["forwarded"] += forwarded
        if stripped:
            _counts["stripped_linked_ids"] += stripped
        for reason, count in dropped.items():
            _counts[f"dropped.{reason}"] += count
    if forwarded:
        metrics.PROXY_EVENTS_FORWARDED.inc(forwarded)
    if stripped:
        metrics.PROXY_LINKED_IDS_STRIPPED.inc(stripped)
    for reason, count in dropped.items():
        metrics.proxy_events_dropped(reason).inc(count)
    if dropped:
        logger.debug("dropped events: %s", dict(dropped))
    drops_count(dropped=dropped)  # durable, for the reports: written every ~30 s


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset() -> None:
    with _lock:
        _counts.clear()
    drops_forget()
