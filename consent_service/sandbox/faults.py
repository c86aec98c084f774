"""Scripted upstream failures: the next N matching requests get a status, a delay or a reset.

An event fault (`event_name` set) matches only capture requests whose decoded batch holds an
event of that name, and answers its status in place of the normal answer: PostHog refusing
one event that no client could foresee. Other requests are answered normally.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
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
    event_name: str | None = None  # None: any request on the path

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
        event_name: str | None = None,
    ) -> Fault:
        """`status=None` answers normally after `latency_ms`; `drop` resets the connection.
        `event_name`: only capture requests holding such an event, answered `status`."""
        if status is not None and not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code or None")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every request")
        if latency_ms < 0:
            raise ValueError("latency_ms cannot be negative")
        if not path_prefix.startswith("/"):
            raise ValueError("path_prefix must start with /")
        if event_name is not None:
            _check_event_fault(event_name, status=status, latency_ms=latency_ms, drop=drop)
        after = None if retry_after is None else str(retry_after)
        fault = Fault(status, times, after, latency_ms, drop, path_prefix, event_name)
        with self._lock:
            self._faults.append(fault)
        return fault

    def poison(self, event_name: str, *, times: int | None = None, path_prefix: str = "/") -> Fault:
        """Answer 400 `invalid_event` to capture requests holding an event named
        `event_name` (until cleared by default), as PostHog refuses an event it cannot
        process; requests without one are answered normally."""
        return self.add(400, times=times, path_prefix=path_prefix, event_name=event_name)

    def take(self, path: str) -> Fault | None:
        """Use up one turn of the first fault matching `path` (event faults aside)."""
        with self._lock:
            for fault in self._faults:
                if fault.event_name is None and path.startswith(fault.path_prefix):
                    return self._use(fault)
        return None

    def take_for_events(self, path: str, event_names: Collection[str]) -> Fault | None:
        """Use up one turn of the first event fault on `path` naming one of `event_names`."""
        with self._lock:
            for fault in self._faults:
                named = fault.event_name is not None and fault.event_name in event_names
                if named and path.startswith(fault.path_prefix):
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


def _check_event_fault(
    event_name: object, *, status: int | None, latency_ms: int, drop: bool
) -> None:
    # Events are only known once the body is decoded: too late to delay or drop cleanly.
    if not isinstance(event_name, str) or not event_name:
        raise ValueError("event_name must be a non-empty string")
    if status is None or drop or latency_ms:
        raise ValueError("an event fault answers a status; it cannot drop or delay")
