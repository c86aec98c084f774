"""/healthz says the process answers; /readyz says whether it can serve, check by check."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from consent_service.erasure.models import PostHogCheck
from consent_service.ops import readiness
from consent_service.spool.store import spool_fullness_forget

pytestmark = pytest.mark.django_db


@pytest.fixture
def verified() -> None:
    PostHogCheck.objects.create(ok=True, status_code=200, detail="fine")


def test_liveness_touches_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]
    assert not response.cookies


def test_ready_when_every_check_passes(client, verified):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "spool": "ok", "posthog": "ok"},
    }


def test_not_ready_until_posthog_was_verified(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["posthog"] == "never verified: run manage.py posthog_check"


def test_not_ready_when_the_last_posthog_check_failed(client, verified):
    PostHogCheck.objects.create(ok=False, status_code=404, detail="no such project")

    assert client.get("/readyz").json()["checks"]["posthog"].startswith("last check failed")


@override_settings(CONSENT_SPOOL_MAX_REQUESTS=0)
def test_not_ready_while_the_spool_is_full(client, verified):
    spool_fullness_forget()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["spool"] == "full: events are refused with 503"


def test_probes_take_get_only(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405


def test_not_ready_while_a_migration_is_not_applied(client, verified, monkeypatch):
    monkeypatch.setattr(readiness.migrations, "applied", False)  # as a freshly started process
    MigrationRecorder(connection).migration_qs.filter(app="spool").delete()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "1 not applied: run manage.py migrate"
