"""Raw SQL on the hot paths asks the host's database router where our models live, as the
ORM does, instead of assuming `default`."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from consent_service.ledger.models import Subject
from consent_service.ledger.visitor_consent import visitor_consent
from consent_service.ops import readiness
from consent_service.spool.store import spool_after_round, spool_counts
from tests.conftest import GRANT_ALL, consent_caches_clear

pytestmark = pytest.mark.django_db

OURS = {"ledger", "spool", "erasure"}
ASKED: list[tuple[str, str]] = []


class RecordingRouter:
    """Puts our models on `default` explicitly, and writes down every question."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._route("read", model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._route("write", model)

    def _route(self, kind: str, model: Any) -> str | None:
        if model._meta.app_label not in OURS:
            return None
        ASKED.append((kind, model._meta.label))
        return "default"


@pytest.fixture
def router() -> Any:
    ASKED.clear()
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.RecordingRouter"]):
        yield ASKED


def test_the_visitor_consent_lookup_asks_the_router(visitor, router):
    visitor.decide(GRANT_ALL)
    consent_caches_clear()

    visitor_id = Subject.objects.get().identifiers.get(kind="visitor").value
    router.clear()

    found = visitor_consent(visitor_id=visitor_id)

    assert found is not None and found.purposes["analytics"]["granted"] is True
    assert ("write", "ledger.Subject") in router  # the writer, never a lagging replica


def test_readiness_asks_the_router(router):
    assert readiness.database() == "ok"
    assert readiness.migrations() == "ok"
    assert ("write", "ledger.ConsentRecord") in router


def test_the_spool_asks_the_router(router):
    spool_counts()
    spool_after_round()
    assert ("read", "spool.SpooledRequest") in router
    assert ("write", "spool.SpooledRequest") in router
