"""The default file cache scans its directory to cull at most once a minute, not per write."""

from __future__ import annotations

from unittest import mock

from consent_service.core.cache import SampledCullFileBasedCache


def test_writes_within_a_minute_scan_the_directory_once(tmp_path):
    cache = SampledCullFileBasedCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 2}})

    scan = cache._list_cache_files  # type: ignore[attr-defined]  # private in the stubs
    with mock.patch.object(cache, "_list_cache_files", wraps=scan) as scans:
        for n in range(10):
            cache.set(f"key-{n}", n)
        assert scans.call_count == 1
        a_minute_passes(cache)
        cache.set("later", 1)
        assert scans.call_count == 2


def test_the_cap_still_holds_once_a_minute(tmp_path):
    cache = SampledCullFileBasedCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 3}})
    for n in range(6):
        cache.set(f"key-{n}", n)
    a_minute_passes(cache)

    cache.set("trigger", 0)

    assert len(list(tmp_path.iterdir())) < 7


def a_minute_passes(cache: SampledCullFileBasedCache) -> None:
    cache._culled_at -= cache.CULL_EVERY_SECONDS + 1
