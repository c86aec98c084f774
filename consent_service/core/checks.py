"""System checks for the settings the product depends on (run by `manage.py check`)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Error, Warning, register

from consent_service.core.defaults import cache_backend, setting

PERSON_PROFILES = {"always", "never", "identified_only"}
HOST_SETTINGS = ("POSTHOG_HOST", "POSTHOG_ASSETS_HOST", "POSTHOG_APP_HOST")
IP_MODES = ("full", "truncate", "drop")  # as proxy/client_address.py, which core may not import


@register()
def check_posthog_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in HOST_SETTINGS:
        parts = urlsplit(setting(name))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            errors.append(Error(f"{name} must be an http(s) URL.", id="consent.E001"))
    if setting("POSTHOG_PERSON_PROFILES") not in PERSON_PROFILES:
        errors.append(
            Error(
                f"POSTHOG_PERSON_PROFILES must be one of {sorted(PERSON_PROFILES)}.",
                id="consent.E002",
            )
        )
    key = setting("POSTHOG_API_KEY")
    if key and not key.startswith("phc_"):
        errors.append(
            Warning(
                "POSTHOG_API_KEY does not look like a project token (phc_…).", id="consent.W001"
            )
        )
    return errors


@register()
def check_consent_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if setting("CONSENT_MAX_AGE_DAYS") <= 0:
        errors.append(Error("CONSENT_MAX_AGE_DAYS must be positive.", id="consent.E003"))
    if not 0.0 <= setting("CONSENT_RECORDING_SAMPLE_RATE") <= 1.0:
        errors.append(
            Error("CONSENT_RECORDING_SAMPLE_RATE must be between 0 and 1.", id="consent.E004")
        )
    if not setting("CONSENT_POLICY_VERSION"):
        errors.append(Error("CONSENT_POLICY_VERSION must not be empty.", id="consent.E005"))
    for value in setting("CONSENT_TRUSTED_PROXIES"):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"CONSENT_TRUSTED_PROXIES: {value!r} is not an IP network.", id="consent.E006"
                )
            )
    return errors


PER_PROCESS_CACHES = (LocMemCache, DummyCache)


@register()
def check_cache_alias(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    alias = setting("CONSENT_CACHE_ALIAS")
    if alias in settings.CACHES:
        return []
    message = f"CONSENT_CACHE_ALIAS names {alias!r}, which is not in CACHES."
    return [Error(message, id="consent.E017")]


@register()
def check_time_zone_support(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Decisions, expiry and receipts are instants: naive local times would move with the
    server's clock and break the ledger's proof of when consent was given."""
    if settings.USE_TZ:
        return []
    return [
        Error("USE_TZ must be True: the consent ledger keeps aware UTC times.", id="consent.E018")
    ]


@register(deploy=True)
def check_shared_cache(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    backend = cache_backend()
    if backend is None or not issubclass(backend, FileBasedCache):
        return []
    seconds = setting("CONSENT_CACHE_SECONDS")
    return [
        Warning(
            "The consent cache is a file cache, shared by the processes of this host only: "
            "with more than one host a withdrawal reaches the others only after "
            f"CONSENT_CACHE_SECONDS ({seconds} s). Use Redis (standalone: REDIS_URL).",
            id="consent.W002",
        )
    ]


@register(deploy=True)
def check_process_cache(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Deploy only: one process (a test run, runserver) may keep its cache in memory, as the
    test settings do; several workers must share it or a withdrawal lags in the others."""
    backend = cache_backend()
    if backend is None or not issubclass(backend, PER_PROCESS_CACHES):
        return []
    alias = setting("CONSENT_CACHE_ALIAS")
    return [
        Warning(
            f"CACHES[{alias!r}] is {backend.__name__}, private to each process: "
            "consent cached by one worker survives a withdrawal made in another for up to "
            "CONSENT_CACHE_SECONDS, and the write throttle counts per process. Use a "
            "shared cache (file-based on one host, Redis on several) and name it in "
            "CONSENT_CACHE_ALIAS.",
            id="consent.W006",
        )
    ]


@register(deploy=True)
def check_erasure_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The shape of what erasure needs; no network here (`manage.py posthog_check` calls)."""
    if not setting("POSTHOG_API_KEY"):
        return []  # analytics off: nothing is forwarded, so nothing to erase
    errors: list[CheckMessage] = []
    project = setting("POSTHOG_PROJECT_ID")
    if not (project.isdigit() or project == "@current"):
        errors.append(Error("POSTHOG_PROJECT_ID must be the project's number.", id="consent.E007"))
    if not setting("POSTHOG_PERSONAL_API_KEY").startswith("phx_"):
        errors.append(
            Error(
                "POSTHOG_PERSONAL_API_KEY must be a personal API key (phx_…) with "
                "person:write: without it nothing can be erased.",
                id="consent.E008",
            )
        )
    if ".i.posthog.com" in (urlsplit(setting("POSTHOG_APP_HOST")).hostname or ""):
        errors.append(
            Error(
                "POSTHOG_APP_HOST is an ingestion host; the persons API lives on the app "
                "host (https://us.posthog.com or https://eu.posthog.com).",
                id="consent.E009",
            )
        )
    return errors


@register()
def check_apps_installed(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The consent app connects login linking and user-deletion erasure: without it, a
    deleted user would silently stay in PostHog."""
    needed = ["consent_service.ledger", "consent_service.erasure", "consent_service.consent"]
    missing = [name for name in needed if not apps.is_installed(name)]
    if not missing or len(missing) == len(needed):
        return []
    return [
        Error(
            f"INSTALLED_APPS lacks {', '.join(missing)}: the ledger, erasure and consent apps "
            "work together (consent connects login linking and user-deletion erasure).",
            id="consent.E010",
        )
    ]


VISITOR_MIDDLEWARE = "consent_service.core.middleware.VisitorCookieMiddleware"


@register()
def check_visitor_middleware(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Without it no visitor cookie is ever set: every page is a new visitor, a decision
    never sticks and the banner comes back on every page."""
    if VISITOR_MIDDLEWARE in settings.MIDDLEWARE:
        return []
    message = f"MIDDLEWARE lacks {VISITOR_MIDDLEWARE!r} (put it last): no visitor cookie is set."
    return [Error(message, id="consent.E019")]


@register()
def check_spool_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    backend = setting("CONSENT_SPOOL_BACKEND")
    if backend not in {"database", "redis"}:
        return [Error("CONSENT_SPOOL_BACKEND must be database or redis.", id="consent.E011")]
    if backend == "redis" and not setting("CONSENT_SPOOL_REDIS_URL"):
        return [
            Error(
                "CONSENT_SPOOL_BACKEND=redis needs CONSENT_SPOOL_REDIS_URL (REDIS_URL is not "
                "used: a cache Redis without persistence would lose acknowledged events).",
                id="consent.E012",
            )
        ]
    return []


@register()
def check_ip_mode(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """CONSENT_IP_MODE against the cookieless preset: PostHog hashes each cookieless visitor
    from the client IP (PROTOCOL.md 3.6), so a cut IP merges visitors and none drops them."""
    mode = setting("CONSENT_IP_MODE")
    if mode not in IP_MODES:
        return [Error(f"CONSENT_IP_MODE must be one of {', '.join(IP_MODES)}.", id="consent.E013")]
    if not setting("CONSENT_COOKIELESS_ON_REJECT"):
        return []
    if mode == "drop":
        return [
            Error(
                "CONSENT_IP_MODE=drop with CONSENT_COOKIELESS_ON_REJECT: PostHog hashes "
                "cookieless visitors from the event's $ip and drops a cookieless event "
                "without one. Use truncate or full, or turn the cookieless preset off.",
                id="consent.E014",
            )
        ]
    if mode == "truncate":
        return [
            Warning(
                "CONSENT_IP_MODE=truncate with CONSENT_COOKIELESS_ON_REJECT: PostHog hashes "
                "cookieless visitors from the client IP, so everyone refusing behind one /24 "
                "(IPv6 /48) with the same user agent counts as one visitor per day.",
                id="consent.W003",
            )
        ]
    return []


@register()
def check_receipt_key_file(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A key named but unreadable is a broken deployment. Its content is parsed on first
    use (consent/receipts.py: 503 receipts_unavailable, logged, if it is no Ed25519 key)."""
    path = setting("CONSENT_RECEIPT_SIGNING_KEY_FILE")
    if not path:
        return []
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        return [
            Error(
                f"CONSENT_RECEIPT_SIGNING_KEY_FILE cannot be read: {error.strerror}.",
                id="consent.E015",
            )
        ]
    return []


@register(deploy=True)
def check_receipt_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Receipts are optional, so only the deployment checks warn (`make run` makes a key)."""
    if not setting("CONSENT_RECEIPT_SIGNING_KEY_FILE"):
        return [
            Warning(
                "CONSENT_RECEIPT_SIGNING_KEY_FILE is not set: consent receipts are off "
                "(GET /api/v1/consent/receipts/<id>/ answers 503 receipts_unavailable).",
                id="consent.W004",
            )
        ]
    if not setting("CONSENT_RECEIPT_CONTROLLER") or not setting("CONSENT_RECEIPT_JURISDICTION"):
        return [
            Warning(
                "Consent receipts are signed but CONSENT_RECEIPT_CONTROLLER or "
                "CONSENT_RECEIPT_JURISDICTION is empty: receipts name no controller or law.",
                id="consent.W005",
            )
        ]
    return []


IDENTITY_SECRET_MIN_LENGTH = 32


@register()
def check_identity_secrets(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Whoever knows the secret can link any browser to any of the host app's users: it must
    be a random key (HMAC-SHA256 gains nothing past 32 bytes, and loses much below)."""
    errors: list[CheckMessage] = []
    for name in ("CONSENT_IDENTITY_SECRET", "CONSENT_IDENTITY_SECRET_PREVIOUS"):
        secret = setting(name)
        if secret and len(secret) < IDENTITY_SECRET_MIN_LENGTH:
            message = (
                f"{name} is {len(secret)} characters: use at least "
                f"{IDENTITY_SECRET_MIN_LENGTH} random ones (python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')."
            )
            errors.append(Error(message, id="consent.E016"))
    return errors
