"""Readiness: each check answers "ok" or says, in a few words, what is wrong.

None of them calls PostHog (its API is rate-limited): the PostHog check reads the stored
result of `manage.py posthog_check`."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.db import DatabaseError, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from consent_service.erasure.posthog_check import posthog_check_latest
from consent_service.spool.store import spool_full

OK = "ok"


def _ledger_connection() -> BaseDatabaseWrapper:
    """Where the host's database router puts the ledger (by label: ops may not import it)."""
    return connections[router.db_for_write(apps.get_model("ledger", "ConsentRecord"))]


def database() -> str:
    try:
        with _ledger_connection().cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "does not answer"
    return OK


class _Migrations:
    """Loading the migration graph costs tens of milliseconds: once every migration is
    applied it stays so for the life of this code, so the answer is kept from then on."""

    applied = False

    def __call__(self) -> str:
        if self.applied:
            return OK
        try:
            executor = MigrationExecutor(_ledger_connection())
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError:
            return "cannot be read"
        if plan:
            return f"{len(plan)} not applied: run manage.py migrate"
        self.applied = True
        return OK


migrations = _Migrations()


def spool() -> str:
    try:
        return "full: events are refused with 503" if spool_full() else OK
    except DatabaseError:
        return "cannot be read"


def posthog() -> str:
    try:
        latest = posthog_check_latest()
    except DatabaseError:
        return "cannot be read"
    if latest is None:
        return "never verified: run manage.py posthog_check"
    return OK if latest.ok else "last check failed: see manage.py posthog_check"


CHECKS: dict[str, Callable[[], str]] = {
    "database": database,
    "migrations": migrations,
    "spool": spool,
    "posthog": posthog,
}


def readiness() -> dict[str, str]:
    results = {"database": database()}
    if results["database"] != OK:  # the others read the database too
        return {name: results.get(name, "not checked") for name in CHECKS}
    return {name: check() for name, check in CHECKS.items()}
