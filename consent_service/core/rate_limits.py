"""Request rates per visitor and per client address, counted in files that every process on
this host maps into memory.

A check costs a few microseconds; a cache round trip per request would cost more than the
proxy's own work. Counts are a count-min sketch per window (two rows of 65,536 counters):
distinct keys that share both counters add up, so an estimate can only be too high, never
too low, and stays exact in practice while the keys counted in one window are far fewer
than the counters. Increments are not atomic across processes: under contention a few are
lost, which only makes a limit slightly more generous. Each host counts its own requests.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

WIDTH = 1 << 16
ROWS = 2
_HEADER = struct.Struct("<q")  # the window number a slab counts
_COUNTER = struct.Struct("<I")
_SLAB_BYTES = _HEADER.size + ROWS * WIDTH * _COUNTER.size
_ZEROS = bytes(ROWS * WIDTH * _COUNTER.size)
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|m|min|h|hour|d|day)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}
_UNIT_SECONDS |= {"d": 86400, "day": 86400}
MAX_RETRY_AFTER = 30  # posthog-js and posthog-python wait at most 30 s for a Retry-After


@dataclass(frozen=True)
class Rate:
    limit: int
    period: float  # seconds


def rate_parse(text: str) -> Rate | None:
    """ "600/min", "10/5s", "1000/hour"; empty or "0" means no limit."""
    if text.strip() in {"", "0"}:
        return None
    match = _RATE.match(text)
    if match is None or int(match[1]) < 1:
        raise ImproperlyConfigured(
            f"Rate {text!r} is not N/period (for example 600/min, 10/5s, 1000/hour) or 0."
        )
    return Rate(int(match[1]), int(match[2] or 1) * _UNIT_SECONDS[match[3]])


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds, when refused


class RateCounter:
    """One limit (say, /ph/ requests per visitor) over a sliding window: the current fixed
    window's count plus the previous window's, weighted by how much of it still overlaps."""

    def __init__(self, path: Path, rate: Rate, salt: bytes) -> None:
        self.rate = rate
        self._salt = hashlib.blake2b(salt, digest_size=16).digest()
        self._memory = _mapped(path)

    def hit(self, key: str, *, now: float | None = None) -> Verdict:
        """Counts a request for `key` unless that would pass the limit."""
        moment = time.time() if now is None else now
        window = math.floor(moment / self.rate.period)
        current = self._current_slab(window)
        previous = self._counted_slab(window - 1)
        slots = self._slots(key)
        count: float = min(self._read(current, slot) for slot in slots)
        elapsed = moment / self.rate.period - window
        if previous is not None:
            count += min(self._read(previous, slot) for slot in slots) * (1 - elapsed)
        if count + 1 > self.rate.limit:
            left = math.ceil((1 - elapsed) * self.rate.period)
            return Verdict(False, max(1, min(MAX_RETRY_AFTER, left)))
        for slot in slots:
            self._write(current, slot, self._read(current, slot) + 1)
        return Verdict(True)

    def forget(self) -> None:
        self._memory[:] = bytes(len(self._memory))

    def _slots(self, key: str) -> tuple[int, ...]:
        digest = hashlib.blake2b(key.encode(), digest_size=2 * ROWS, key=self._salt).digest()
        return tuple(
            row * WIDTH + int.from_bytes(digest[2 * row : 2 * row + 2], "little")
            for row in range(ROWS)
        )

    def _counted_slab(self, window: int) -> int | None:
        offset = (window % 2) * _SLAB_BYTES
        (counted,) = _HEADER.unpack_from(self._memory, offset)
        return offset + _HEADER.size if counted == window else None

    def _current_slab(self, window: int) -> int:
        slab = self._counted_slab(window)
        if slab is not None:
            return slab
        # The first process into a new window clears the slab it reuses.
        offset = (window % 2) * _SLAB_BYTES
        start = offset + _HEADER.size
        self._memory[start : start + len(_ZEROS)] = _ZEROS
        _HEADER.pack_into(self._memory, offset, window)
        return start

    def _read(self, slab: int, slot: int) -> int:
        value: int = _COUNTER.unpack_from(self._memory, slab + slot * _COUNTER.size)[0]
        return value

    def _write(self, slab: int, slot: int, value: int) -> None:
        _COUNTER.pack_into(self._memory, slab + slot * _COUNTER.size, min(value, 0xFFFFFFFF))


def _mapped(path: Path) -> mmap.mmap:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_size < 2 * _SLAB_BYTES:
            os.ftruncate(descriptor, 2 * _SLAB_BYTES)
        return mmap.mmap(descriptor, 2 * _SLAB_BYTES)
    finally:
        os.close(descriptor)


_counters: dict[tuple[str, Rate, str], RateCounter] = {}


def rate_counter(scope: str, rate: Rate | None, directory: str) -> RateCounter | None:
    """This process's counter for `scope` ("proxy-visitor", ...), or None when unlimited."""
    if rate is None:
        return None
    counter = _counters.get((scope, rate, directory))
    if counter is None:
        path = Path(directory) / f"{scope}.counts"
        counter = RateCounter(path, rate, f"{scope}:{settings.SECRET_KEY}".encode())
        _counters[(scope, rate, directory)] = counter
    return counter


def rate_counters_forget() -> None:
    """Tests: every limit starts from zero."""
    for counter in _counters.values():
        counter.forget()


def limits_hit(limits: list[tuple[str, Rate | None, str | None]], directory: str) -> Verdict:
    """Counts one request against each (scope, rate, key) in turn; the first refusal wins.
    A missing key (no visitor cookie) or rate (unlimited) skips that limit."""
    for scope, rate, key in limits:
        counter = rate_counter(scope, rate, directory)
        if counter is None or key is None:
            continue
        verdict = counter.hit(key)
        if not verdict.allowed:
            return verdict
    return Verdict(True)
