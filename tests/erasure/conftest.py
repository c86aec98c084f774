"""Erasure tests run against the sandbox PostHog; these fixtures point the service at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from consent_service.proxy import stats
from consent_service.sandbox.server import SandboxServer
from tests.proxy.conftest import TOKEN, sandbox_server  # noqa: F401  (the session's server)

PERSONAL_API_KEY = "phx_sandbox"
PROJECT_ID = "1"


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:  # noqa: F811
    """The sandbox PostHog, emptied, taking every PostHog role; erasure is due at once."""
    sandbox_server.reset()
    stats.reset()
    url = sandbox_server.url
    with override_settings(
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=url,
        POSTHOG_ASSETS_HOST=url,
        POSTHOG_APP_HOST=url,
        POSTHOG_PERSONAL_API_KEY=PERSONAL_API_KEY,
        POSTHOG_PROJECT_ID=PROJECT_ID,
        POSTHOG_API_TIMEOUT=1.0,
        CONSENT_PROXY_READ_TIMEOUT=1.0,
        ERASURE_DELAY_SECONDS=0,
    ):
        yield sandbox_server
    sandbox_server.reset()
