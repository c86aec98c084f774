from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from consent_service.proxy import stats
from consent_service.sandbox.server import SandboxServer

TOKEN = "phc_TESTTOKEN123"
_TRIGGERS = importlib.import_module("consent_service.ledger.migrations.0002_append_only_triggers")


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox PostHog, emptied, with the service pointed at it."""
    sandbox_server.reset()
    stats.reset()
    url = sandbox_server.url
    with override_settings(
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=url,
        POSTHOG_ASSETS_HOST=url,
        POSTHOG_APP_HOST=url,
        CONSENT_PROXY_READ_TIMEOUT=1.0,
    ):
        yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def flushable_ledger() -> Iterator[None]:
    """For live-server tests on SQLite: Django's flush between transactional tests
    deletes every row, which the append-only triggers refuse; lift them for the flush."""
    if connection.vendor != "sqlite":
        yield
        return
    _recreate_sqlite_triggers()
    yield
    with connection.cursor() as cursor:
        for statement in _TRIGGERS.SQLITE_DROP:
            cursor.execute(statement)


def _recreate_sqlite_triggers() -> None:
    with connection.cursor() as cursor:
        for statement in [*_TRIGGERS.SQLITE_DROP, *_TRIGGERS.SQLITE_CREATE]:
            cursor.execute(statement)
