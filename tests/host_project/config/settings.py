"""A host project's settings, shaped like cookiecutter-django's: its own user model (UUID
keys), its own DRF defaults, ATOMIC_REQUESTS, an old DEFAULT_AUTO_FIELD, and consent-service
installed from the wheel.

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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "host.sqlite3",
        "ATOMIC_REQUESTS": True,  # as cookiecutter-django sets it
    }
}
# As a project started before Django 3.2: our apps must keep their own (BigAutoField).
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
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
    "DATETIME_FORMAT": "%d/%m/%Y %H:%M",
    "DATETIME_INPUT_FORMATS": ["%d/%m/%Y %H:%M"],
    "COERCE_DECIMAL_TO_STRING": False,
    "UNICODE_JSON": False,
    "COMPACT_JSON": False,
    "STRICT_JSON": False,
    "NON_FIELD_ERRORS_KEY": "errors",
    "URL_FORMAT_OVERRIDE": "fmt",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {"TITLE": "Host internal API", "SERVE_INCLUDE_SCHEMA": True}

# --- consent-service ----------------------------------------------------------------------
# Only what this project changes: every other setting keeps its default
# (consent_service/core/defaults.py). The test points PostHog at the wheel's sandbox.
POSTHOG_API_KEY = os.environ.get("POSTHOG_API_KEY", "")
POSTHOG_HOST = os.environ.get("POSTHOG_HOST", "https://eu.i.posthog.com")
POSTHOG_ASSETS_HOST = os.environ.get("POSTHOG_ASSETS_HOST", "https://eu-assets.i.posthog.com")
POSTHOG_APP_HOST = os.environ.get("POSTHOG_APP_HOST", "https://eu.posthog.com")
POSTHOG_PROJECT_ID = os.environ.get("POSTHOG_PROJECT_ID", "")
POSTHOG_PERSONAL_API_KEY = os.environ.get("POSTHOG_PERSONAL_API_KEY", "")
