"""Django's cache backends, minus their per-call costs: the Redis one builds a redis.Redis
on every call, the file one scans its whole directory on every write."""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from consent_service.core.conf import conf


class PooledRedisCacheClient(RedisCacheClient):
    # Django builds a new redis.Redis per operation, which costs more than the round trip
    # on a loopback Redis; one client per pool is thread-safe and does the same work.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # The stubs do not declare Django's private helpers used here.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            self._clients[id(pool)] = client
        return client


class PooledRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = PooledRedisCacheClient


class SampledCullFileBasedCache(FileBasedCache):
    """Django's file cache lists its whole directory on every write to decide whether to cull:
    with the default 200,000 entries that is a directory scan per consent write and per cache
    miss. Here the scan runs at most once a minute per process, so the entry cap is kept
    approximately (it may be passed by a minute of writes)."""

    CULL_EVERY_SECONDS = 60.0

    def __init__(self, dir: str, params: dict[str, Any]) -> None:
        super().__init__(dir, params)
        self._culled_at = float("-inf")

    def _cull(self) -> None:
        now = time.monotonic()
        if now - self._culled_at < self.CULL_EVERY_SECONDS:
            return
        self._culled_at = now
        super()._cull()  # type: ignore[misc]  # private in the stubs


def consent_cache() -> BaseCache:
    """The cache consent lives in: the project's CACHES[CONSENT_CACHE_ALIAS]."""
    return caches[conf().cache_alias]
