from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import modify_settings, override_settings

from config.env import EnvError, env_bool, env_int, env_list
from consent_service.core.checks import (
    check_apps_installed,
    check_consent_settings,
    check_identity_secrets,
    check_ip_mode,
    check_posthog_settings,
    check_process_cache,
    check_shared_cache,
    check_spool_settings,
)


def ids(messages) -> list[str]:
    return sorted(message.id for message in messages)


def test_default_settings_pass_the_checks():
    assert check_posthog_settings(None) == []
    assert check_consent_settings(None) == []
    assert check_apps_installed(None) == []
    assert check_spool_settings(None) == []
    assert check_ip_mode(None) == []
    assert check_identity_secrets(None) == []


@pytest.mark.parametrize(
    ("backend", "url", "expected"),
    [("kafka", "", ["consent.E011"]), ("redis", "", ["consent.E012"]), ("redis", "redis://r", [])],
)
def test_the_spool_backend_is_checked(backend, url, expected):
    with override_settings(CONSENT_SPOOL_BACKEND=backend, CONSENT_SPOOL_REDIS_URL=url):
        assert ids(check_spool_settings(None)) == expected


@modify_settings(INSTALLED_APPS={"remove": ["consent_service.consent"]})
def test_the_ledger_and_erasure_without_the_consent_app_are_refused():
    """Without it, nothing erases a deleted user: that must not pass silently."""
    assert ids(check_apps_installed(None)) == ["consent.E010"]


@override_settings(POSTHOG_HOST="us.i.posthog.com", POSTHOG_PERSON_PROFILES="sometimes")
def test_bad_posthog_settings_are_reported():
    assert ids(check_posthog_settings(None)) == ["consent.E001", "consent.E002"]


@override_settings(POSTHOG_API_KEY="phx_personal_key_by_mistake")
def test_a_personal_key_in_place_of_the_project_token_warns():
    assert ids(check_posthog_settings(None)) == ["consent.W001"]


@override_settings(
    CONSENT_MAX_AGE_DAYS=0, CONSENT_RECORDING_SAMPLE_RATE=1.5, CONSENT_TRUSTED_PROXIES=["nope"]
)
def test_bad_consent_settings_are_reported():
    assert ids(check_consent_settings(None)) == ["consent.E003", "consent.E004", "consent.E006"]


def test_env_readers_reject_malformed_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_INT", "ten")
    monkeypatch.setenv("X_LIST", " a, ,b ")

    with pytest.raises(EnvError):
        env_bool("X_BOOL")
    with pytest.raises(EnvError):
        env_int("X_INT", 1)
    assert env_list("X_LIST") == ["a", "b"]


@pytest.mark.parametrize(
    ("mode", "cookieless", "expected"),
    [
        ("full", False, []),
        ("truncate", False, []),
        ("drop", False, []),
        ("hash", False, ["consent.E013"]),
        ("full", True, []),
        ("truncate", True, ["consent.W003"]),  # one /24 with one user agent: one visitor
        ("drop", True, ["consent.E014"]),  # PostHog drops cookieless events without $ip
    ],
)
def test_the_ip_mode_is_checked_against_the_cookieless_preset(mode, cookieless, expected):
    with override_settings(CONSENT_IP_MODE=mode, CONSENT_COOKIELESS_ON_REJECT=cookieless):
        assert ids(check_ip_mode(None)) == expected


@pytest.mark.parametrize(
    ("secret", "previous", "expected"),
    [
        ("", "", []),  # the feature is off
        ("k" * 32, "", []),
        ("k" * 32, "short-old-key", ["consent.E016"]),
        ("password123", "", ["consent.E016"]),
    ],
)
def test_a_short_identity_secret_is_refused(secret, previous, expected):
    with override_settings(
        CONSENT_IDENTITY_SECRET=secret, CONSENT_IDENTITY_SECRET_PREVIOUS=previous
    ):
        assert ids(check_identity_secrets(None)) == expected


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", ["consent.W006"]),
        ("django.core.cache.backends.dummy.DummyCache", ["consent.W006"]),
        ("django.core.cache.backends.filebased.FileBasedCache", []),
        ("consent_service.core.cache.PooledRedisCache", []),
    ],
)
def test_a_per_process_cache_is_warned_about_on_deploy(backend, expected):
    with override_settings(CACHES={"default": {"BACKEND": backend, "LOCATION": "/tmp/x"}}):
        assert ids(check_process_cache(None)) == expected
        # Not in a plain `check`: the test settings keep their cache in memory on purpose.
        assert "consent.W006" not in ids(run_checks())
        assert (
            ids(m for m in run_checks(include_deployment_checks=True) if m.id == "consent.W006")
            == expected
        )


REDIS = {"BACKEND": "consent_service.core.cache.PooledRedisCache", "LOCATION": "redis://x"}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
FILES = {"BACKEND": "consent_service.core.cache.SampledCullFileBasedCache", "LOCATION": "/tmp/x"}


@pytest.mark.parametrize(
    ("consent_cache", "expected"),
    [(LOCMEM, ["consent.W006"]), (FILES, ["consent.W002"]), (REDIS, [])],
)
def test_the_cache_checks_judge_the_cache_consent_lives_in(consent_cache, expected):
    """The host's default cache is not ours when CONSENT_CACHE_ALIAS names another."""
    other = REDIS if consent_cache is not REDIS else LOCMEM
    caches = {"default": other, "consent": consent_cache}
    with override_settings(CACHES=caches, CONSENT_CACHE_ALIAS="consent"):
        found = ids(check_process_cache(None)) + ids(check_shared_cache(None))
    assert found == expected


def test_naive_datetimes_are_refused():
    with override_settings(USE_TZ=False):
        assert "consent.E018" in ids(run_checks())
    assert "consent.E018" not in ids(run_checks())


def test_the_visitor_cookie_middleware_is_required():
    middleware = "consent_service.core.middleware.VisitorCookieMiddleware"
    with modify_settings(MIDDLEWARE={"remove": [middleware]}):
        assert "consent.E019" in ids(run_checks())
    assert "consent.E019" not in ids(run_checks())
