"""Scripted upstream failures: the next N matching requests get a status, a delay or a reset."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Fault:
    status: int | None
    times: int | None  # None: until cleared
    retry_after: str | None
    latency_ms: int
    drop: bool
    path_prefix: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """Thread-safe queue of faults; the oldest matching one is used first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        status: int | None = 503,
        *,
        times: int | None = 1,
        retry_after: str | int | None = None,
        latency_ms: int = 0,
        drop: bool = False,
        path_prefix: str = "/",
    ) -> Fault:
        """`status=None` answers normally after `latency_ms`; `drop` resets the connection."""
        if status is not None and not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code or None")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every request")
        if latency_ms < 0:
            raise ValueError("latency_ms cannot be negative")
        if not path_prefix.startswith("/"):
            raise ValueError("path_prefix must start with /")
        after = None if retry_after is None else str(retry_after)
        fault = Fault(status, times, after, latency_ms, drop, path_prefix)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, path: str) -> Fault | None:
        """Use up one turn of the first fault matching `path`."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    return self._use(fault)
        return None

    def _use(self, fault: Fault) -> Fault:
        if fault.times is not None:
            fault.times -= 1
            if fault.times == 0:
                self._faults.remove(fault)
        return fault

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(fault)) for fault in self._faults]

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
        return count
