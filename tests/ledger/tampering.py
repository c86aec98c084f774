"""Raw-SQL helpers that change the ledger behind the application's back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

SQLITE_TRIGGERS = {
    "ledger_consentrecord_no_update": "UPDATE",
    "ledger_consentrecord_no_delete": "DELETE",
}


@contextmanager
def triggers_disabled() -> Iterator[None]:
    """Lift the append-only guard, as an attacker with database access could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A superuser session can skip every trigger without an ALTER TABLE.
            cursor.execute("SET session_replication_role = replica")
            try:
                yield
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN (%s, %s)",
                list(SQLITE_TRIGGERS),
            )
            saved = cursor.fetchall()
            for name, _ in saved:
                cursor.execute(f"DROP TRIGGER {name}")
            try:
                yield
            finally:
                for _, sql in saved:
                    cursor.execute(sql)


def execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
