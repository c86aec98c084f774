"""Settings, read from the environment with safe embedded defaults.

Every variable is listed in .env.example and in the README's settings table.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_secret, env_setting, env_str
from consent_service.api.schema import SCHEMA_SETTINGS

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. `make run` generates one for local use; "
        "production must provide its own (or DJANGO_SECRET_KEY_FILE)."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "consent_service.core",
    "consent_service.api",
    "consent_service.ledger",
    "consent_service.client_config",
    "consent_service.proxy",
    "consent_service.spool",
    "consent_service.erasure",
    "consent_service.consent",
    "consent_service.ops",
]
# The local PostHog sandbox (`manage.py posthog_sandbox`) and the /demo/ page are dev tools:
# `make run`, the test and the benchmark settings turn them on; production leaves them out.
CONSENT_DEV_TOOLS = env_bool("CONSENT_DEV_TOOLS", False)
if CONSENT_DEV_TOOLS:
    INSTALLED_APPS += ["consent_service.sandbox", "consent_service.demo"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "consent_service.core.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "consent_service.core.middleware.VisitorCookieMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of
    # failing with "database is locked" when both upgrade a read lock.
    # WAL: readers never wait for the writer, and a commit costs one fsync, not two.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        # synchronous=NORMAL: a commit (the spool's acknowledgement) survives a crash of any
        # process; FULL would also survive power loss, at ~15x the cost per commit.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

REDIS_URL = env_str("REDIS_URL")
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "consent_service.core.cache.PooledRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "consent",
        }
    }
else:
    # Files, not process memory: every worker process on this host sees a consent change
    # at once. More than one host needs REDIS_URL.
    CACHES = {
        "default": {
            "BACKEND": "consent_service.core.cache.SampledCullFileBasedCache",
            "LOCATION": env_str("CONSENT_CACHE_DIR")
            or str(Path(tempfile.gettempdir()) / "consent-service-cache"),
            "OPTIONS": {"MAX_ENTRIES": 200_000},
        }
    }

# Consent kept in each process's memory too, dropped whenever this host's generation file
# changes (consent_service/ledger/local_cache.py). Unset: beside a file cache, off with Redis.
if env_str("CONSENT_PROCESS_CACHE_FILE"):
    CONSENT_PROCESS_CACHE_FILE = env_str("CONSENT_PROCESS_CACHE_FILE")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# consent.js is consent_service/core/static/: the app-directories finder serves it here and
# in a host project alike.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The API takes small JSON bodies; the proxy reads its own streams with its own cap.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 64 * 1024)

# Security headers and cookies (Django deployment checklist).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
# Off by default: both bind every subdomain to HTTPS for the max-age, preload for good.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
# Load balancer and Prometheus probes call the app over plain HTTP on the internal network,
# without the proxy's X-Forwarded-Proto: a 301 to https would fail them. Paths only, no
# leading slash; /ph/ never redirects (config/wsgi.py serves it without this middleware).
SECURE_REDIRECT_EXEMPT = [r"^(?:healthz|readyz|metrics)$"]
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Only what this standalone project itself needs: every API view sets its own
# authentication, permissions, parsers, renderers, throttles and exception handler
# (consent_service/api/views.py), so a host project's REST_FRAMEWORK changes none of them.
# drf-spectacular's schema class stays the default, as its own views expect.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The served document's settings (consent_service/api/schema.py), for `manage.py spectacular`.
SPECTACULAR_SETTINGS = {**SCHEMA_SETTINGS, "SERVE_INCLUDE_SCHEMA": False}

# text: readable lines (`make run`); json: one object per line for a log pipeline. Both
# carry the request id and never the client address (consent_service/core/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', got {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "consent_service.core.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"()": "consent_service.core.logs.TextFormatter"},
        "json": {"()": "consent_service.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs every request at INFO: one line per proxied event batch is noise.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Django's own handlers (a plain console under DEBUG, runserver's request lines)
        # would print a second, differently formatted line: everything goes to ours.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- PostHog --------------------------------------------------------------------------
POSTHOG_API_KEY = env_str("POSTHOG_API_KEY")
POSTHOG_HOST = env_setting("POSTHOG_HOST").rstrip("/")
POSTHOG_ASSETS_HOST = env_setting("POSTHOG_ASSETS_HOST").rstrip("/")
POSTHOG_APP_HOST = env_setting("POSTHOG_APP_HOST").rstrip("/")
POSTHOG_PROJECT_ID = env_str("POSTHOG_PROJECT_ID")
POSTHOG_PERSONAL_API_KEY = env_secret("POSTHOG_PERSONAL_API_KEY")
POSTHOG_PERSON_PROFILES = env_setting("POSTHOG_PERSON_PROFILES")
POSTHOG_API_TIMEOUT = env_setting("POSTHOG_API_TIMEOUT")

# --- Consent --------------------------------------------------------------------------
CONSENT_POLICY_VERSION = env_setting("CONSENT_POLICY_VERSION")
CONSENT_MAX_AGE_DAYS = env_setting("CONSENT_MAX_AGE_DAYS")
CONSENT_PROXY_PREFIX = "/" + env_setting("CONSENT_PROXY_PREFIX").strip("/")
CONSENT_TRUSTED_PROXIES = env_setting("CONSENT_TRUSTED_PROXIES")
# What PostHog sees of the client address: full, truncate (IPv4 /24, IPv6 /48) or drop
# (nothing, and GeoIP off). The ledger's evidence is always truncated, whatever this says.
CONSENT_IP_MODE = env_setting("CONSENT_IP_MODE").strip().lower()
CONSENT_VISITOR_COOKIE_NAME = env_setting("CONSENT_VISITOR_COOKIE_NAME")
# How long a cached consent entry lives unless a write replaces it first (every consent write
# re-sets its subject's entries and drops every process's in-memory copies).
CONSENT_CACHE_SECONDS = env_setting("CONSENT_CACHE_SECONDS")
# Empty: host-only. A parent domain (".example.com") makes every subdomain one visitor, and
# only then may posthog-js share its ids across them (cross_subdomain_cookie).
CONSENT_VISITOR_COOKIE_DOMAIN = env_str("CONSENT_VISITOR_COOKIE_DOMAIN")
# Browsers may claim only posthog-js anonymous ids (UUIDv7); identified ids are minted by us.
# On, a browser may claim any unbound id it names first (a visitor could take another
# user's guessable id, such as an email, before that user does).
CONSENT_TRUST_CLIENT_DISTINCT_IDS = env_setting("CONSENT_TRUST_CLIENT_DISTINCT_IDS")
# Signed consent receipts (README "Consent receipts"). The key file holds an Ed25519 private
# key (PEM PKCS#8, or its 32 raw bytes), read once per process; empty: no receipts (503).
CONSENT_RECEIPT_SIGNING_KEY_FILE = env_str("CONSENT_RECEIPT_SIGNING_KEY_FILE")
CONSENT_RECEIPT_CONTROLLER = env_str("CONSENT_RECEIPT_CONTROLLER")
CONSENT_RECEIPT_CONTROLLER_CONTACT = env_str("CONSENT_RECEIPT_CONTROLLER_CONTACT")
CONSENT_RECEIPT_JURISDICTION = env_str("CONSENT_RECEIPT_JURISDICTION")
# On, posthog-js runs with `cookieless_mode: "on_reject"` and the proxy forwards a visitor's
# cookieless events (sentinel id, allowlisted properties) while analytics is not granted
# (README "Cookieless measurement on refusal"). Off: nothing at all without a grant.
CONSENT_COOKIELESS_ON_REJECT = env_setting("CONSENT_COOKIELESS_ON_REJECT")

# --- Rate limits ------------------------------------------------------------------------
# N/period, or 0 for none. Counted per host in memory-mapped files under CONSENT_RATE_LIMIT_DIR
# (consent_service/core/rate_limits.py). /ph/ answers an excess with 503 and Retry-After,
# which posthog-js retries (it drops a batch on any 4xx); the API answers 429.
# Generous for /ph/: a busy tab sends a request every second or two, a visitor may have
# several tabs, and one address may be a whole office behind NAT.
CONSENT_PROXY_RATE_PER_VISITOR = env_setting("CONSENT_PROXY_RATE_PER_VISITOR")
CONSENT_PROXY_RATE_PER_IP = env_setting("CONSENT_PROXY_RATE_PER_IP")
# The consent and config GETs: one or two per page view.
CONSENT_READ_RATE_PER_VISITOR = env_setting("CONSENT_READ_RATE_PER_VISITOR")
CONSENT_READ_RATE_PER_IP = env_setting("CONSENT_READ_RATE_PER_IP")
# The consent, withdrawal and identity writes, per client address (DRF's N/period form).
CONSENT_WRITE_RATE = env_setting("CONSENT_WRITE_RATE")
CONSENT_RATE_LIMIT_DIR = env_str("CONSENT_RATE_LIMIT_DIR") or str(
    Path(tempfile.gettempdir()) / "consent-service-rates"
)

# --- Proxy ----------------------------------------------------------------------------
CONSENT_PROXY_MAX_BODY_BYTES = env_setting("CONSENT_PROXY_MAX_BODY_BYTES")
CONSENT_PROXY_MAX_DECODED_BYTES = env_setting("CONSENT_PROXY_MAX_DECODED_BYTES")
CONSENT_PROXY_MAX_EVENTS = env_setting("CONSENT_PROXY_MAX_EVENTS")
CONSENT_PROXY_CONNECT_TIMEOUT = env_setting("CONSENT_PROXY_CONNECT_TIMEOUT")
CONSENT_PROXY_READ_TIMEOUT = env_setting("CONSENT_PROXY_READ_TIMEOUT")
CONSENT_PROXY_POOL_SIZE = env_setting("CONSENT_PROXY_POOL_SIZE")
# Whole upstream call, connect to last byte: httpx's read timeout alone never trips on a drip.
CONSENT_PROXY_DEADLINE_SECONDS = env_setting("CONSENT_PROXY_DEADLINE_SECONDS")
CONSENT_PROXY_MAX_RESPONSE_BYTES = env_setting("CONSENT_PROXY_MAX_RESPONSE_BYTES")
# Uncompressed rrweb snapshots nest as deep as the page's DOM.
CONSENT_PROXY_MAX_DEPTH = env_setting("CONSENT_PROXY_MAX_DEPTH")
# Backend SDKs (posthog-python, ...) use host=<site>/<prefix>/server/<secret>; empty: no route.
CONSENT_PROXY_SERVER_SECRET = env_secret("CONSENT_PROXY_SERVER_SECRET")

# Middleware for /ph/ when config/wsgi.py serves it through proxy_fast_path: the proxy view
# is CSRF-exempt and reads only its own signed visitor cookie.
CONSENT_PROXY_MIDDLEWARE = ["consent_service.core.middleware.RequestIdMiddleware"]

# --- Spool and forwarder ----------------------------------------------------------------
# The proxy acknowledges events once they are in the spool; `manage.py proxy_forwarder`
# delivers them. Full (too many requests waiting, or the oldest too old): the proxy answers
# 503 and posthog-js retries later. Nothing is dropped silently.
# database (default): the service's own database. redis: a Redis stream at
# CONSENT_SPOOL_REDIS_URL shared by several hosts; only with Redis persistence (AOF) on.
CONSENT_SPOOL_BACKEND = env_setting("CONSENT_SPOOL_BACKEND")
CONSENT_SPOOL_REDIS_URL = env_str("CONSENT_SPOOL_REDIS_URL")
CONSENT_SPOOL_MAX_REQUESTS = env_setting("CONSENT_SPOOL_MAX_REQUESTS")
CONSENT_SPOOL_MAX_AGE_SECONDS = env_setting("CONSENT_SPOOL_MAX_AGE_SECONDS")
# Events PostHog refused on their own are kept this long for inspection, then deleted.
CONSENT_SPOOL_DEAD_LETTER_DAYS = env_setting("CONSENT_SPOOL_DEAD_LETTER_DAYS")
CONSENT_FORWARDER_BATCH_EVENTS = env_setting("CONSENT_FORWARDER_BATCH_EVENTS")
CONSENT_FORWARDER_BATCH_BYTES = env_setting("CONSENT_FORWARDER_BATCH_BYTES")
CONSENT_FORWARDER_LEASE_SECONDS = env_setting("CONSENT_FORWARDER_LEASE_SECONDS")
CONSENT_FORWARDER_BACKOFF_CAP_SECONDS = env_setting("CONSENT_FORWARDER_BACKOFF_CAP_SECONDS")

# --- Erasure ----------------------------------------------------------------------------
CONSENT_ERASURE_BACKOFF_BASE_SECONDS = env_setting("CONSENT_ERASURE_BACKOFF_BASE_SECONDS")
CONSENT_ERASURE_BACKOFF_CAP_SECONDS = env_setting("CONSENT_ERASURE_BACKOFF_CAP_SECONDS")
CONSENT_ERASURE_LEASE_SECONDS = env_setting("CONSENT_ERASURE_LEASE_SECONDS")
# Recordings (sent within the request) and the server-side helpers' events in flight when
# consent was withdrawn must land before the deletion, or they would recreate the person:
# wait out the proxy timeout. Spooled events: the worker waits for the spool instead.
if env_str("CONSENT_ERASURE_DELAY_SECONDS"):  # unset: the proxy read timeout (core/defaults.py)
    CONSENT_ERASURE_DELAY_SECONDS = env_float("CONSENT_ERASURE_DELAY_SECONDS", 0.0)
CONSENT_ERASURE_STRATEGY = env_setting("CONSENT_ERASURE_STRATEGY")
# After PostHog accepted a deletion, look again this much later: no person may be left.
CONSENT_ERASURE_CONFIRM_DELAY_SECONDS = env_setting("CONSENT_ERASURE_CONFIRM_DELAY_SECONDS")

# --- Metrics (GET /metrics) -------------------------------------------------------------
# Served to these networks (the client address as CONSENT_TRUSTED_PROXIES resolves it), or
# to any caller with `Authorization: Bearer <CONSENT_METRICS_TOKEN>`. Empty token: no token.
CONSENT_METRICS_ALLOWED_NETWORKS = env_list(
    "CONSENT_METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"]
)
CONSENT_METRICS_TOKEN = env_secret("CONSENT_METRICS_TOKEN")

# --- Signed identity (POST /api/v1/identity/) ---------------------------------------------
# The host app's backend signs its user id (README "Signed identity"). Empty secret: the
# endpoint answers 404. The previous secret is accepted too while a new one is rolled out.
CONSENT_IDENTITY_SECRET = env_secret("CONSENT_IDENTITY_SECRET")
CONSENT_IDENTITY_SECRET_PREVIOUS = env_secret("CONSENT_IDENTITY_SECRET_PREVIOUS")
CONSENT_IDENTITY_MAX_AGE_SECONDS = env_setting("CONSENT_IDENTITY_MAX_AGE_SECONDS")
# The site the signature covers; empty: the first of DJANGO_ALLOWED_HOSTS.
if env_str("CONSENT_IDENTITY_SITE"):  # unset: the first of ALLOWED_HOSTS (core/defaults.py)
    CONSENT_IDENTITY_SITE = env_str("CONSENT_IDENTITY_SITE")

# --- Session recording ----------------------------------------------------------------
CONSENT_RECORDING_MASK_ALL_INPUTS = env_setting("CONSENT_RECORDING_MASK_ALL_INPUTS")
CONSENT_RECORDING_MASK_TEXT_SELECTOR = env_str("CONSENT_RECORDING_MASK_TEXT_SELECTOR")
CONSENT_RECORDING_BLOCK_SELECTOR = env_str("CONSENT_RECORDING_BLOCK_SELECTOR")
CONSENT_RECORDING_SAMPLE_RATE = env_setting("CONSENT_RECORDING_SAMPLE_RATE")
CSRF_FAILURE_VIEW = "consent_service.api.handlers.csrf_failure"
