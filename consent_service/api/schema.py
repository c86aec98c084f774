"""The OpenAPI document of our API, built from its own settings and URLs: served publicly, it
must neither publish a host project's own endpoints nor take its SPECTACULAR_SETTINGS.

A plain module (no Django imports): config/settings.py uses the same settings for
`manage.py spectacular`, so the committed openapi/ files and the served document agree.
"""

from __future__ import annotations

from typing import Any

SCHEMA_SETTINGS: dict[str, Any] = {
    "TITLE": "consent-service API",
    "DESCRIPTION": (
        "Consent ledger and posthog-js init config. Every error uses the `Error` envelope."
    ),
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
}

# Our API alone, where consent.js expects it (consent_service.urls mounts it there too).
SCHEMA_URLCONF = "consent_service.api.schema_urls"
