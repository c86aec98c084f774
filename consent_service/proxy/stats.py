"""What the proxy forwarded and dropped, per process, by reason."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

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
    if dropped:
        logger.debug("dropped events: %s", dict(dropped))


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset() -> None:
    with _lock:
        _counts.clear()
