"""The value of every setting the product reads, when the project does not set it.

A host project sets only what it changes (README "Use it in your Django project"); the
standalone project (config/settings.py) reads the same names from the environment and falls
back to these. Every read goes through `setting()`, so a missing name is never an error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache.backends.filebased import FileBasedCache
from django.utils.module_loading import import_string

MIB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    # PostHog. No project key: analytics off (nothing is forwarded, nothing to erase).
    "POSTHOG_API_KEY": "",
    "POSTHOG_HOST": "https://us.i.posthog.com",
    "POSTHOG_ASSETS_HOST": "https://us-assets.i.posthog.com",
    "POSTHOG_APP_HOST": "https://us.posthog.com",
    "POSTHOG_PROJECT_ID": "",
    "POSTHOG_PERSONAL_API_KEY": "",
    "POSTHOG_PERSON_PROFILES": "identified_only",
    "POSTHOG_API_TIMEOUT": 10.0,
    # Consent.
    "CONSENT_POLICY_VERSION": "1",
    "CONSENT_MAX_AGE_DAYS": 395,
    "CONSENT_PROXY_PREFIX": "/ph",
    "CONSENT_TRUSTED_PROXIES": [],
    "CONSENT_IP_MODE": "full",
    "CONSENT_VISITOR_COOKIE_NAME": "consent_vid",
    "CONSENT_VISITOR_COOKIE_DOMAIN": "",
    "CONSENT_CACHE_ALIAS": "default",
    "CONSENT_CACHE_SECONDS": 300,
    "CONSENT_TRUST_CLIENT_DISTINCT_IDS": False,
    "CONSENT_RECEIPT_SIGNING_KEY_FILE": "",
    "CONSENT_RECEIPT_CONTROLLER": "",
    "CONSENT_RECEIPT_CONTROLLER_CONTACT": "",
    "CONSENT_RECEIPT_JURISDICTION": "",
    "CONSENT_COOKIELESS_ON_REJECT": False,
    # Rate limits.
    "CONSENT_PROXY_RATE_PER_VISITOR": "1200/min",
    "CONSENT_PROXY_RATE_PER_IP": "12000/min",
    "CONSENT_READ_RATE_PER_VISITOR": "300/min",
    "CONSENT_READ_RATE_PER_IP": "3000/min",
    "CONSENT_WRITE_RATE": "60/min",
    "CONSENT_RATE_LIMIT_DIR": str(Path(tempfile.gettempdir()) / "consent-service-rates"),
    # Proxy.
    "CONSENT_PROXY_MAX_BODY_BYTES": 25 * MIB,
    "CONSENT_PROXY_MAX_DECODED_BYTES": 64 * MIB,
    "CONSENT_PROXY_MAX_EVENTS": 2000,
    "CONSENT_PROXY_CONNECT_TIMEOUT": 3.0,
    "CONSENT_PROXY_READ_TIMEOUT": 10.0,
    "CONSENT_PROXY_POOL_SIZE": 50,
    "CONSENT_PROXY_DEADLINE_SECONDS": 10.0,
    "CONSENT_PROXY_MAX_RESPONSE_BYTES": 8 * MIB,
    "CONSENT_PROXY_MAX_DEPTH": 512,
    "CONSENT_PROXY_SERVER_SECRET": "",
    "CONSENT_PROXY_MIDDLEWARE": ["consent_service.core.middleware.RequestIdMiddleware"],
    # Spool and forwarder.
    "CONSENT_SPOOL_BACKEND": "database",
    "CONSENT_SPOOL_REDIS_URL": "",
    "CONSENT_SPOOL_MAX_REQUESTS": 200_000,
    "CONSENT_SPOOL_MAX_AGE_SECONDS": 3 * 86400.0,
    "CONSENT_SPOOL_DEAD_LETTER_DAYS": 30,
    "CONSENT_FORWARDER_BATCH_EVENTS": 500,
    "CONSENT_FORWARDER_BATCH_BYTES": 2 * MIB,
    "CONSENT_FORWARDER_LEASE_SECONDS": 60.0,
    "CONSENT_FORWARDER_BACKOFF_CAP_SECONDS": 300.0,
    # Erasure.
    "CONSENT_ERASURE_BACKOFF_BASE_SECONDS": 180.0,
    "CONSENT_ERASURE_BACKOFF_CAP_SECONDS": 6 * 3600.0,
    "CONSENT_ERASURE_LEASE_SECONDS": 300.0,
    "CONSENT_ERASURE_STRATEGY": "bulk",
    "CONSENT_ERASURE_CONFIRM_DELAY_SECONDS": 600.0,
    # Metrics.
    "CONSENT_METRICS_ALLOWED_NETWORKS": ["127.0.0.0/8", "::1/128"],
    "CONSENT_METRICS_TOKEN": "",
    # Signed identity.
    "CONSENT_IDENTITY_SECRET": "",
    "CONSENT_IDENTITY_SECRET_PREVIOUS": "",
    "CONSENT_IDENTITY_MAX_AGE_SECONDS": 300,
    # Session recording.
    "CONSENT_RECORDING_MASK_ALL_INPUTS": True,
    "CONSENT_RECORDING_MASK_TEXT_SELECTOR": "",
    "CONSENT_RECORDING_BLOCK_SELECTOR": "",
    "CONSENT_RECORDING_SAMPLE_RATE": 1.0,
}


def _visitor_cookie_secure() -> bool:
    return bool(settings.SESSION_COOKIE_SECURE)  # the visitor cookie follows the session's


def _identity_site() -> str:
    return (list(settings.ALLOWED_HOSTS) or [""])[0]


def _erasure_delay() -> float:
    # Recordings and server-side events still in flight when consent was withdrawn must land
    # before the deletion, or they would recreate the person: wait out the proxy timeout.
    return float(setting("CONSENT_PROXY_READ_TIMEOUT"))


def _process_cache_file() -> str:
    # Kept per process only where one host's processes share the cache: a file cache.
    # Anything else (Redis, memcached) may span hosts that cannot see this file: off.
    backend = cache_backend()
    if backend is None or not issubclass(backend, FileBasedCache):
        return ""
    location = settings.CACHES[setting("CONSENT_CACHE_ALIAS")]["LOCATION"]
    return str(Path(location) / "consent-generation")


def cache_backend() -> type | None:
    """The class of the cache consent lives in; None if CONSENT_CACHE_ALIAS names none."""
    options = settings.CACHES.get(setting("CONSENT_CACHE_ALIAS"))
    return import_string(options["BACKEND"]) if options else None


DERIVED: dict[str, Callable[[], Any]] = {
    "CONSENT_VISITOR_COOKIE_SECURE": _visitor_cookie_secure,
    "CONSENT_IDENTITY_SITE": _identity_site,
    "CONSENT_ERASURE_DELAY_SECONDS": _erasure_delay,
    "CONSENT_PROCESS_CACHE_FILE": _process_cache_file,
}

NAMES = frozenset(DEFAULTS) | frozenset(DERIVED)


def setting(name: str) -> Any:
    """The project's value for `name`, else its default."""
    try:
        return getattr(settings, name)
    except AttributeError:
        pass
    derive = DERIVED.get(name)
    return derive() if derive else DEFAULTS[name]
