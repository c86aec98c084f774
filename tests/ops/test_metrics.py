"""GET /metrics: what each layer counted, the gauges computed at scrape time, who may read
it, and the counts of other processes in multiprocess mode.

Counters are process-wide and other tests move them too, so each test compares two scrapes
(`Scrape.delta`); the multiprocess test reads a directory of its own."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from consent_service.ops.checks import check_metrics_settings
from tests.conftest import TOKEN, Visitor, anonymous_id, forward_spool
from tests.erasure.helpers import run_worker, tracked_visitor

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "203.0.113.7"  # TEST-NET-3: never an allowed network by default
Key = tuple[str, frozenset[tuple[str, str]]]


def scrape(client: Client | None = None, **headers: Any) -> dict[Key, float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    text = response.content.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Scrape:
    """A scrape now; `delta` says how far a series moved since."""

    def __init__(self) -> None:
        self.before = scrape()

    def delta(self, name: str, **labels: str) -> float:
        return value(scrape(), name, **labels) - value(self.before, name, **labels)


def post_events(visitor: Visitor, label: str, count: int = 1) -> int:
    distinct_id = anonymous_id(label)
    events = [
        {"event": "$pageview", "properties": {"distinct_id": distinct_id}} for _ in range(count)
    ]
    body = json.dumps({"api_key": TOKEN, "batch": events})
    return int(visitor.client.post("/ph/e/", body, content_type="text/plain").status_code)


# --- what is counted --------------------------------------------------------------------


def test_proxied_events_count_as_forwarded_or_dropped_by_reason(sandbox, make_visitor):
    consented, refusing = make_visitor(), make_visitor()
    assert consented.decide({"analytics": True}).status_code == 201
    assert refusing.decide({"analytics": False}).status_code == 201
    metrics = Scrape()

    assert post_events(consented, "consented", count=2) == 200
    assert post_events(refusing, "refusing", count=3) == 200
    assert consented.client.get("/ph/no-such-route/").status_code == 404

    assert metrics.delta("consent_proxy_events_forwarded_total") == 2
    assert metrics.delta("consent_proxy_events_dropped_total", reason="no_consent") == 3
    assert metrics.delta("consent_proxy_requests_total", route="e", status="200") == 2
    assert metrics.delta("consent_proxy_requests_total", route="unknown", status="404") == 1


def test_forwarder_deliveries_and_capture_posts_are_counted(sandbox, make_visitor):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    assert post_events(visitor, "delivered", count=3) == 200
    metrics = Scrape()

    assert forward_spool().delivered == 3

    assert metrics.delta("consent_forwarder_events_delivered_total") == 3
    assert metrics.delta("consent_forwarder_batches_delivered_total") == 1
    assert metrics.delta("consent_posthog_capture_requests_total", status="200") == 1
    assert metrics.delta("consent_posthog_capture_request_duration_seconds_count") == 1


def test_forwarder_failures_are_counted_by_kind(sandbox, make_visitor):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    assert post_events(visitor, "failing") == 200
    sandbox.faults.add(503, times=1, path_prefix="/batch/")
    metrics = Scrape()

    assert forward_spool().retried == 1

    assert metrics.delta("consent_forwarder_failures_total", kind="server_error") == 1
    assert metrics.delta("consent_posthog_capture_requests_total", status="503") == 1
    assert metrics.delta("consent_forwarder_requests_retried_total") == 1
    assert metrics.delta("consent_forwarder_events_delivered_total") == 0


def test_an_event_posthog_refuses_is_dead_lettered_and_counted(sandbox, make_visitor):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    assert post_events(visitor, "refused") == 200
    sandbox.faults.add(400, times=1, path_prefix="/batch/")
    metrics = Scrape()

    assert forward_spool().dead_lettered == 1

    assert metrics.delta("consent_forwarder_failures_total", kind="refused") == 1
    assert metrics.delta("consent_forwarder_events_dead_lettered_total") == 1
    assert value(scrape(), "consent_spool_dead_letters") == 1


def test_spool_gauges_are_read_at_scrape_time(sandbox, make_visitor):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    assert post_events(visitor, "waiting") == 200

    waiting = scrape()
    assert value(waiting, "consent_spool_requests") == 1
    assert 0 <= value(waiting, "consent_spool_oldest_age_seconds") < 60
    assert value(waiting, "consent_metrics_source_up", source="spool") == 1

    forward_spool()
    drained = scrape()
    assert value(drained, "consent_spool_requests") == 0
    assert value(drained, "consent_spool_oldest_age_seconds") == 0


def test_consent_decisions_count_once_committed(visitor, django_capture_on_commit_callbacks):
    metrics = Scrape()
    granted = {"purpose": "analytics", "choice": "granted", "action": "decide"}

    with django_capture_on_commit_callbacks(execute=True):
        assert visitor.decide({"analytics": True, "session_replay": False}).status_code == 201
        assert metrics.delta("consent_decisions_total", **granted, source="api") == 0

    assert metrics.delta("consent_decisions_total", **granted, source="api") == 1
    refused = {"purpose": "session_replay", "choice": "refused", "action": "decide"}
    assert metrics.delta("consent_decisions_total", **refused, source="api") == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert visitor.withdraw().status_code == 201
    withdrawn = {"purpose": "analytics", "choice": "refused", "action": "withdraw"}
    assert metrics.delta("consent_decisions_total", **withdrawn, source="api") == 1


def test_erasure_worker_outcomes_and_persons_api_calls_are_counted(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)
    visitor.withdraw()
    assert value(scrape(), "consent_erasure_requests", status="pending") == 1
    metrics = Scrape()

    assert run_worker() == ["succeeded"]

    after = scrape()
    assert value(after, "consent_erasure_requests", status="pending") == 0
    assert value(after, "consent_erasure_requests", status="succeeded") == 1
    assert metrics.delta("consent_erasure_outcomes_total", step="process", result="succeeded") == 1
    bulk = {"endpoint": "persons_bulk_delete"}
    assert metrics.delta("consent_posthog_api_requests_total", **bulk, status="202") == 1
    assert metrics.delta("consent_posthog_api_request_duration_seconds_count", **bulk) == 1


def test_erasure_gauges_show_overdue_and_misconfigured_requests(
    sandbox, make_visitor, time_machine
):
    time_machine.move_to(timezone.now(), tick=True)
    visitor = tracked_visitor(make_visitor)
    visitor.withdraw()
    sandbox.faults.add(404, times=None, path_prefix="/api/")  # no such project: misconfigured
    metrics = Scrape()

    assert run_worker() == ["pending"]
    time_machine.shift(timedelta(days=26))

    after = scrape()
    assert value(after, "consent_erasure_requests_misconfigured") == 1
    assert value(after, "consent_erasure_requests_overdue") == 1
    assert value(after, "consent_metrics_source_up", source="erasure") == 1
    assert metrics.delta("consent_erasure_outcomes_total", step="process", result="pending") == 1
    bulk = {"endpoint": "persons_bulk_delete"}
    assert metrics.delta("consent_posthog_api_requests_total", **bulk, status="404") == 1


# --- who may read it --------------------------------------------------------------------


def test_the_loopback_network_may_scrape_by_default():
    response = Client().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "consent_spool_requests" in response.content.decode()


def test_another_network_is_refused_with_the_error_envelope():
    response = Client(REMOTE_ADDR=OUTSIDE).get("/metrics")

    assert response.status_code == 403
    body = response.json()
    assert (body["type"], body["code"]) == ("permission_error", "metrics_forbidden")


@override_settings(CONSENT_METRICS_ALLOWED_NETWORKS=["203.0.113.0/24"])
def test_a_configured_network_may_scrape_and_loopback_then_may_not():
    assert Client(REMOTE_ADDR=OUTSIDE).get("/metrics").status_code == 200
    assert Client().get("/metrics").status_code == 403


@override_settings(CONSENT_METRICS_TOKEN="s3cret-metrics-token")
def test_the_bearer_token_opens_it_from_any_network_and_a_wrong_one_does_not():
    outside = Client(REMOTE_ADDR=OUTSIDE)

    assert (
        outside.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200
    )
    assert (
        outside.get("/metrics", HTTP_AUTHORIZATION="bearer s3cret-metrics-token").status_code == 200
    )
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert (
        outside.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics-token").status_code == 403
    )
    assert outside.get("/metrics").status_code == 403


def test_no_token_configured_means_no_token_opens_it():
    outside = Client(REMOTE_ADDR=OUTSIDE)

    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer").status_code == 403


def test_a_request_forwarded_by_an_untrusted_local_proxy_is_not_local():
    """nginx on the same host: the socket says 127.0.0.1 for every visitor on the internet."""
    response = Client().get("/metrics", HTTP_X_FORWARDED_FOR=OUTSIDE)

    assert response.status_code == 403


@override_settings(CONSENT_TRUSTED_PROXIES=["127.0.0.1/32"])
def test_behind_a_trusted_proxy_the_forwarded_client_address_decides():
    client = Client()

    assert client.get("/metrics", HTTP_X_FORWARDED_FOR=OUTSIDE).status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.9").status_code == 200


def test_a_scrape_writes_nothing_and_sets_no_cookie(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics")

    assert response.status_code == 200
    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in WRITES]
    assert writes == []
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/metrics").status_code == 405


WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"}


# --- every process counts -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("ledger_defaults", "flushable_ledger")
def test_multiprocess_mode_adds_up_the_counts_of_other_processes(
    sandbox, make_visitor, tmp_path, monkeypatch
):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    assert post_events(visitor, "other-process", count=2) == 200

    subprocess.run(
        [sys.executable, "manage.py", "proxy_forwarder", "--once"],
        cwd=ROOT,
        env={**forwarder_env(sandbox.url), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert len(sandbox.store.events) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = scrape()

    assert value(samples, "consent_forwarder_events_delivered_total") == 2
    assert value(samples, "consent_posthog_capture_requests_total", status="200") == 1
    # Scrape-time gauges: once, from this process, not once per process's files.
    assert [key for key in samples if key[0] == "consent_spool_requests"] == [
        ("consent_spool_requests", frozenset())
    ]
    assert value(samples, "consent_spool_requests") == 0


def forwarder_env(sandbox_url: str) -> dict[str, str]:
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{database['NAME']}"
    else:
        url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": url,
        "POSTHOG_API_KEY": TOKEN,
        "POSTHOG_HOST": sandbox_url,
    }


# --- when a source fails, and configuration ---------------------------------------------


@override_settings(CONSENT_SPOOL_BACKEND="redis", CONSENT_SPOOL_REDIS_URL="redis://127.0.0.1:1/0")
def test_a_source_that_cannot_be_read_is_left_out_and_said_so(caplog):
    with caplog.at_level(logging.ERROR, logger="consent_service.ops"):
        samples = scrape()

    assert value(samples, "consent_metrics_source_up", source="spool") == 0
    assert value(samples, "consent_metrics_source_up", source="erasure") == 1
    assert not [key for key in samples if key[0].startswith("consent_spool_")]
    assert "spool could not be read" in caplog.text


@override_settings(CONSENT_METRICS_ALLOWED_NETWORKS=["127.0.0.0/8", "not-a-network"])
def test_a_network_that_does_not_parse_fails_the_system_check(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    assert [error.id for error in check_metrics_settings(None)] == ["consent_ops.E001"]


def test_an_empty_multiprocess_dir_is_warned_about(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")

    assert [error.id for error in check_metrics_settings(None)] == ["consent_ops.W001"]
