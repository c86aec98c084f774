"""A host project's settings, shaped like cookiecutter-django's: its own user model (UUID
keys), its own DRF defaults, and consent-service installed from the wheel.

tests/test_host_project.py copies this project to a temporary directory and runs it in a
virtualenv where `consent_service` is the installed wheel and the repository's `config`
package is not importable.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = False
SECRET_KEY = "host-project-test-only-secret-key-0123456789abcdefghij"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "users",
    # consent-service, in this order (README "Use it in your Django project").
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
AUTH_USER_MODEL = "users.User"
LOGIN_REDIRECT_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "host.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Files: the forwarder runs as its own process and must see the same consent.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(BASE_DIR / "cache"),
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
USE_TZ = True
TIME_ZONE = "UTC"

# The host's API defaults, unlike consent-service's: the product's views must not inherit them.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 5,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": "1000/day"},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- consent-service ----------------------------------------------------------------------
# PostHog: the test points these at the sandbox started from the installed wheel.
POSTHOG_API_KEY = os.environ.get("POSTHOG_API_KEY", "")
POSTHOG_HOST = os.environ.get("POSTHOG_HOST", "https://eu.i.posthog.com")
POSTHOG_ASSETS_HOST = os.environ.get("POSTHOG_ASSETS_HOST", "https://eu-assets.i.posthog.com")
POSTHOG_APP_HOST = os.environ.get("POSTHOG_APP_HOST", "https://eu.posthog.com")
POSTHOG_PROJECT_ID = os.environ.get("POSTHOG_PROJECT_ID", "")
POSTHOG_PERSONAL_API_KEY = os.environ.get("POSTHOG_PERSONAL_API_KEY", "")
POSTHOG_PERSON_PROFILES = "identified_only"
POSTHOG_API_TIMEOUT = 2.0

REDIS_URL = ""
CONSENT_POLICY_VERSION = "1"
CONSENT_MAX_AGE_DAYS = 395
CONSENT_PROXY_PREFIX = "/ph"
CONSENT_TRUSTED_PROXIES: list[str] = []
CONSENT_IP_MODE = "full"
CONSENT_VISITOR_COOKIE_NAME = "consent_vid"
CONSENT_VISITOR_COOKIE_SECURE = False
CONSENT_VISITOR_COOKIE_DOMAIN = ""
CONSENT_CACHE_SECONDS = 300
CONSENT_PROCESS_CACHE_FILE = str(BASE_DIR / "cache" / "consent-generation")
CONSENT_TRUST_CLIENT_DISTINCT_IDS = False
CONSENT_RECEIPT_SIGNING_KEY_FILE = ""
CONSENT_RECEIPT_CONTROLLER = ""
CONSENT_RECEIPT_CONTROLLER_CONTACT = ""
CONSENT_RECEIPT_JURISDICTION = ""
CONSENT_COOKIELESS_ON_REJECT = False
CONSENT_WRITE_RATE = "60/min"
CONSENT_PROXY_RATE_PER_VISITOR = "1200/min"
CONSENT_PROXY_RATE_PER_IP = "12000/min"
CONSENT_READ_RATE_PER_VISITOR = "300/min"
CONSENT_READ_RATE_PER_IP = "3000/min"
CONSENT_RATE_LIMIT_DIR = str(BASE_DIR / "rates")
CONSENT_PROXY_MAX_BODY_BYTES = 25 * 1024 * 1024
CONSENT_PROXY_MAX_DECODED_BYTES = 64 * 1024 * 1024
CONSENT_PROXY_MAX_EVENTS = 2000
CONSENT_PROXY_CONNECT_TIMEOUT = 3.0
CONSENT_PROXY_READ_TIMEOUT = 2.0
CONSENT_PROXY_POOL_SIZE = 10
CONSENT_PROXY_DEADLINE_SECONDS = 5.0
CONSENT_PROXY_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
CONSENT_PROXY_MAX_DEPTH = 512
CONSENT_PROXY_SERVER_SECRET = ""
CONSENT_PROXY_MIDDLEWARE = ["consent_service.core.middleware.RequestIdMiddleware"]
CONSENT_SPOOL_BACKEND = "database"
CONSENT_SPOOL_REDIS_URL = ""
CONSENT_SPOOL_MAX_REQUESTS = 200_000
CONSENT_SPOOL_MAX_AGE_SECONDS = 3 * 86400.0
CONSENT_SPOOL_DEAD_LETTER_DAYS = 30
CONSENT_FORWARDER_BATCH_EVENTS = 500
CONSENT_FORWARDER_BATCH_BYTES = 2 * 1024 * 1024
CONSENT_FORWARDER_LEASE_SECONDS = 60.0
CONSENT_FORWARDER_BACKOFF_CAP_SECONDS = 300.0
ERASURE_BACKOFF_BASE_SECONDS = 180.0
ERASURE_BACKOFF_CAP_SECONDS = 6 * 3600.0
ERASURE_LEASE_SECONDS = 300.0
ERASURE_DELAY_SECONDS = 0.0
ERASURE_STRATEGY = "bulk"
ERASURE_CONFIRM_DELAY_SECONDS = 600.0
CONSENT_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
CONSENT_METRICS_TOKEN = ""
CONSENT_IDENTITY_SECRET = ""
CONSENT_IDENTITY_SECRET_PREVIOUS = ""
CONSENT_IDENTITY_MAX_AGE_SECONDS = 300
CONSENT_IDENTITY_SITE = "testserver"
RECORDING_MASK_ALL_INPUTS = True
RECORDING_MASK_TEXT_SELECTOR = ""
RECORDING_BLOCK_SELECTOR = ""
RECORDING_SAMPLE_RATE = 1.0
