"""What the sandbox received: every request and every accepted event, in arrival order."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_EVENTS = 100_000
MAX_REQUESTS = 10_000
RECORDING_ROUTE = "/s/"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CapturedEvent:
    """One accepted event. `headers` are the request's, names lower-cased. `personless`:
    ingested without a person (`$process_person_profile: false` and no person for its
    distinct_id yet), so deleting persons never deletes it, as in PostHog. `timestamp`:
    the event's time as PostHog stores it (see clock.py). `ip`: the IP PostHog records,
    its `$ip` (see client_ip.py)."""

    route: str
    event: dict[str, Any]
    distinct_id: str | None
    headers: dict[str, str]
    received_at: datetime = field(default_factory=utc_now)
    personless: bool = False
    timestamp: datetime = field(default_factory=utc_now)  # capture always sets it
    ip: str | None = None

    @property
    def is_recording(self) -> bool:
        return self.route == RECORDING_ROUTE


@dataclass(frozen=True)
class CapturedRequest:
    """One request as received, whatever its route or outcome (status 0: dropped)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    received_at: datetime = field(default_factory=utc_now)


class Store:
    """Thread-safe; the oldest entries go first once a cap is reached.

    `clear()` starts a new generation. Writes tagged with an older one are dropped, so a
    request still in flight (say, delayed by a latency fault) when a test resets the store
    cannot land in the next test's store."""

    def __init__(self, *, max_events: int = MAX_EVENTS, max_requests: int = MAX_REQUESTS) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._events: deque[CapturedEvent] = deque(maxlen=max_events)
        self._requests: deque[CapturedRequest] = deque(maxlen=max_requests)

    @property
    def events(self) -> list[CapturedEvent]:
        with self._lock:
            return list(self._events)

    @property
    def requests(self) -> list[CapturedRequest]:
        with self._lock:
            return list(self._requests)

    def events_for(self, distinct_id: str) -> list[CapturedEvent]:
        with self._lock:
            return [event for event in self._events if event.distinct_id == distinct_id]

    @property
    def generation(self) -> int:
        return self._generation

    def add_events(
        self, events: Collection[CapturedEvent], *, generation: int | None = None
    ) -> bool:
        """False (and nothing kept) when `generation` is given and no longer current."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return False
            self._events.extend(events)
        return True

    def add_request(self, request: CapturedRequest, *, generation: int | None = None) -> None:
        with self._lock:
            if generation is None or generation == self._generation:
                self._requests.append(request)

    def remove_events(self, distinct_ids: Collection[str], *, recordings: bool) -> int:
        """Drop the analytics events of these ids that were ingested with a person (PostHog
        deletes events by person: personless ones stay), or, with `recordings`, their /s/
        snapshots (deleted by distinct_id)."""
        wanted = set(distinct_ids)

        def doomed(event: CapturedEvent) -> bool:
            if event.distinct_id not in wanted or event.is_recording != recordings:
                return False
            return recordings or not event.personless

        with self._lock:
            kept = [event for event in self._events if not doomed(event)]
            removed = len(self._events) - len(kept)
            self._events = deque(kept, maxlen=self._events.maxlen)
        return removed

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._events.clear()
            self._requests.clear()
