"""Several forwarders share one spool, and one killed mid-batch loses nothing: on the
database spool (PostgreSQL: row locks that skip locked rows; SQLite: IMMEDIATE transactions)
and on a Redis stream (consumer group)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from consent_service.ledger.models import SubjectIdentifier
from consent_service.proxy.forwarder import forward_round
from consent_service.spool.store import Entry, spool_append, spool_counts
from tests.conftest import (
    TOKEN,
    Visitor,
    anonymous_id,
    forward_spool,
    redis_spool,
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("ledger_defaults", "flushable_ledger"),
]
ROOT = Path(__file__).resolve().parents[2]
VISITOR_ID = anonymous_id("spooled")


@pytest.fixture(params=["database", "redis"])
def backend(request) -> Iterator[dict[str, str]]:
    """The settings a forwarder process needs for this spool."""
    if request.param == "database":
        yield {"CONSENT_SPOOL_BACKEND": "database"}
        return
    with redis_spool() as settings:
        yield settings


def spooled(requests: int, per_request: int = 5) -> set[str]:
    """A consented visitor whose id is bound, and `requests` spooled requests of events."""
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    event = {"event": "$pageview", "properties": {"distinct_id": VISITOR_ID}}
    body = json.dumps({"api_key": TOKEN, "batch": [event]})
    assert visitor.client.post("/ph/e/", body, content_type="text/plain").status_code == 200
    subject_id = SubjectIdentifier.objects.get(value=VISITOR_ID).subject_id
    forward_spool()  # the binding request itself
    uuids: set[str] = set()
    for _ in range(requests):
        events = [_event(uuids) for _ in range(per_request)]
        entry = Entry(subject_id, json.dumps(events), per_request)
        spool_append(entries=[entry], received_at=time.time(), sent_at="", ip="198.51.100.7")
    return uuids


def _event(uuids: set[str]) -> dict[str, object]:
    value = str(uuid.uuid4())
    uuids.add(value)
    properties = {"distinct_id": VISITOR_ID}
    return {"event": "e", "uuid": value, "distinct_id": VISITOR_ID, "properties": properties}


def drain(worker: str) -> int:
    delivered = 0
    try:
        while (result := forward_round(worker=worker, limit=20)).requests:
            delivered += result.delivered
    finally:
        connection.close()
    return delivered


def test_two_forwarders_drain_10000_events_each_delivered_once(sandbox, backend):
    uuids = spooled(2000)
    sandbox.store.clear()

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(drain, ["forwarder-a", "forwarder-b"]))

    assert sum(counts) == 10_000
    assert all(count > 0 for count in counts)  # both took part
    arrived = Counter(event.event["uuid"] for event in sandbox.store.events)
    assert set(arrived) == uuids
    assert max(arrived.values()) == 1  # each request claimed by one forwarder only
    assert spool_counts()[0] == 0


def test_a_forwarder_killed_mid_batch_loses_nothing_and_resends_only_same_uuids(sandbox, backend):
    uuids = spooled(40)
    sandbox.store.clear()
    sandbox.faults.add(None, times=1, latency_ms=3000, path_prefix="/batch/")
    victim = subprocess.Popen(
        [sys.executable, "manage.py", "proxy_forwarder", "--name", "victim"],
        cwd=ROOT,
        env={**forwarder_env(sandbox.url, lease_seconds=1), **backend},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: sandbox.faults.pending == [])  # its POST is in the slow fault
        time.sleep(0.5)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

    assert spool_counts()[0] == 40  # nothing settled
    time.sleep(1.1)  # its lease runs out
    with override_settings(CONSENT_FORWARDER_LEASE_SECONDS=1):
        forward_spool("rescuer")

    time.sleep(3)  # the victim's slow request may still land: a resend, same uuids
    arrived = Counter(event.event["uuid"] for event in sandbox.store.events)
    assert set(arrived) == uuids
    assert spool_counts()[0] == 0


def forwarder_env(sandbox_url: str, lease_seconds: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "POSTHOG_API_KEY": TOKEN,
        "POSTHOG_HOST": sandbox_url,
        "CONSENT_FORWARDER_LEASE_SECONDS": str(lease_seconds),
    }


def database_url() -> str:
    """The test database, for a process of its own (SQLite tests use a file)."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
