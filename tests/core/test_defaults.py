"""A host project sets only the settings it changes: every other one has a default, and the
system checks and the typed view of the settings work without any of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.checks import run_checks
from django.test import override_settings

from consent_service.core.conf import conf
from consent_service.core.defaults import DEFAULTS, NAMES, setting
from tests.conftest import GRANT_ALL, Visitor

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


@pytest.fixture
def no_product_settings() -> Iterator[None]:
    """As in a host project that copied none of our settings."""
    with override_settings():
        for name in NAMES:
            if hasattr(settings, name):
                delattr(settings, name)
        conf.cache_clear()
        yield
    conf.cache_clear()


def test_every_setting_has_its_default(no_product_settings):
    for name, default in DEFAULTS.items():
        assert not hasattr(settings, name)
        assert setting(name) == default, name


def test_the_checks_and_the_typed_settings_need_none_of_them(no_product_settings):
    messages = run_checks(include_deployment_checks=True)
    ours = [m for m in messages if m.id and m.id.startswith("consent")]
    assert [m for m in ours if m.is_serious()] == []

    built = conf()
    assert built.proxy_prefix == "/ph"
    assert built.posthog_host == DEFAULTS["POSTHOG_HOST"]
    assert not built.analytics_enabled


def test_derived_defaults_follow_the_settings_they_come_from(no_product_settings):
    with override_settings(
        CONSENT_PROXY_READ_TIMEOUT=4.5, SESSION_COOKIE_SECURE=True, ALLOWED_HOSTS=["shop.test"]
    ):
        assert conf().erasure_delay_seconds == 4.5
        assert conf().visitor_cookie_secure is True
        assert conf().identity_site == "shop.test"


def test_the_process_cache_sits_beside_a_file_cache_only(no_product_settings, tmp_path: Path):
    file_cache = {"BACKEND": "consent_service.core.cache.SampledCullFileBasedCache"}
    with override_settings(CACHES={"default": {**file_cache, "LOCATION": str(tmp_path)}}):
        assert conf().process_cache_file == str(tmp_path / "consent-generation")
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}
    for backend in (redis, LOCMEM):
        with override_settings(CACHES={"default": backend}):
            assert conf().process_cache_file == ""


@pytest.mark.django_db
def test_consent_lives_in_the_cache_the_alias_names(visitor: Visitor):
    caches_ = {"default": LOCMEM, "consent": {**LOCMEM, "LOCATION": "consent-only"}}
    with override_settings(CACHES=caches_, CONSENT_CACHE_ALIAS="consent"):
        caches["consent"].clear()
        caches["default"].clear()
        assert visitor.decide(GRANT_ALL).status_code == 201
        assert visitor.config().json()["consent"]["needs_prompt"] is False  # read via the cache

        assert len(caches["consent"]._cache) > 0  # type: ignore[attr-defined]
        assert len(caches["default"]._cache) == 0  # type: ignore[attr-defined]


def test_an_alias_missing_from_caches_is_an_error():
    with override_settings(CONSENT_CACHE_ALIAS="nowhere"):
        ids = [m.id for m in run_checks()]
    assert "consent.E017" in ids
