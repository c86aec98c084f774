"""Consent kept in process memory for the hot paths, dropped the moment it may be stale.

The shared cache costs a file read (or a Redis round trip) per lookup, which the proxy pays
on every request. So entries are also kept here, tagged with the host's *generation*: eight
bytes in a memory-mapped file (`CONSENT_PROCESS_CACHE_FILE`) that every consent write
changes, inside its transaction and again after it commits. A lookup first compares the
generation, a memory read; if it changed, this process forgets everything it kept. A
withdrawal is therefore effective on the very next request in every process of the host.

One host only: processes on other hosts cannot see the file. So by default it is on only when
the consent cache is a file cache (core/defaults.py); with Redis (several hosts) the setting
is empty and every lookup reads the shared cache.
"""

from __future__ import annotations

import mmap
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from consent_service.core.conf import conf

SIZE = 8
MAX_ENTRIES = 100_000  # then start over: a bound, not an LRU
MISSING: Any = object()


class _Generation:
    """The shared eight bytes, mapped once per process and path."""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)

    def read(self) -> bytes:
        return self._map[:SIZE]

    def change(self) -> None:
        self._map[:SIZE] = secrets.token_bytes(SIZE)  # a new value, no read-modify-write


class _LocalCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: _Generation | None = None
        self._seen = b""
        self._entries: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        generation = self._current()
        if generation is None:
            return MISSING
        if generation != self._seen:
            with self._lock:
                self._entries.clear()
                self._seen = generation
            return MISSING
        return self._entries.get(key, MISSING)

    def stamp(self) -> bytes | None:
        """Read before loading an entry: a change during the load then voids it."""
        return self._current()

    def put(self, key: str, value: Any, stamp: bytes | None) -> None:
        if stamp is None or stamp != self._seen:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value

    def change(self) -> None:
        generation = self._mapped()
        if generation is not None:
            generation.change()

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation = None
            self._seen = b""

    def _current(self) -> bytes | None:
        generation = self._mapped()
        return generation.read() if generation is not None else None

    def _mapped(self) -> _Generation | None:
        path = conf().process_cache_file
        if not path:
            return None
        if self._generation is None or self._generation.path != path:
            with self._lock:
                self._generation = _Generation(path)
                self._entries.clear()
        return self._generation


local_cache = _LocalCache()
