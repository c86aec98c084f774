"""What the proxy forwarded and dropped, per process, by reason."""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("consent_service.proxy")

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def record(*, forwarded: int, dropped: Counter[str]) -> None:
    with _lock:
        _counts["forwarded"] += forwarded
        for reason, count in dropped.items():
            _counts[f"dropped.{reason}"] += count
    if dropped:
        logger.debug("dropped events: %s", dict(dropped))


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset() -> None:
    with _lock:
        _counts.clear()


def dropped_header(dropped: Counter[str]) -> str:
    return ", ".join(f"{reason}={count}" for reason, count in sorted(dropped.items()))
