"""One pooled httpx.Client per process, built on first use from the current settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
from django.core.signals import setting_changed


class PooledClient:
    """Lazily built, shared by every thread, rebuilt after a settings change (tests)."""

    def __init__(self, factory: Callable[[], httpx.Client]) -> None:
        self._factory = factory
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        setting_changed.connect(self._reset, weak=False)

    def get(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def _reset(self, **kwargs: Any) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
