from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from django.db import connection

_TRIGGERS = importlib.import_module("consent_service.ledger.migrations.0002_append_only_triggers")


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
