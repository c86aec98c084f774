"""Several workers on PostgreSQL: row locks that skip locked rows, and leases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from consent_service.erasure.models import ErasureAttempt, ErasureRequest
from consent_service.erasure.services import erasure_claim, erasure_process
from consent_service.ledger.models import Subject, SubjectIdentifier
from tests.conftest import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("postgres_only", "ledger_defaults"),
]
ROOT = Path(__file__).resolve().parents[2]


def pending_requests(count: int) -> list[int]:
    ids = []
    for n in range(count):
        subject = Subject.objects.create()
        SubjectIdentifier.objects.create(subject=subject, kind="distinct_id", value=f"id-{n}")
        request = ErasureRequest.objects.create(
            subject=subject, distinct_ids=[f"id-{n}"], reason="api", requested_by_label="test"
        )
        ids.append(request.pk)
    return ids


def drain(worker: str) -> int:
    done = 0
    try:
        while claimed := erasure_claim(worker=worker, limit=5):
            done += len(erasure_process(requests=claimed, worker=worker))
    finally:
        connection.close()
    return done


def test_two_workers_drain_200_requests_each_exactly_once(sandbox):
    pending_requests(200)
    sandbox.faults.add(None, times=None, latency_ms=2, path_prefix="/api/")

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(drain, ["worker-a", "worker-b"]))

    assert sum(counts) == 200
    assert all(count > 0 for count in counts)  # both took part
    assert ErasureRequest.objects.filter(status="succeeded").count() == 200
    rounds = Counter(ErasureAttempt.objects.values_list("request_id", "round"))
    assert len(rounds) == 200 and set(rounds) == {(pk, 1) for pk, _ in rounds}  # one round each
    erased = Counter(
        distinct_id
        for call in sandbox.store.requests
        if call.path.endswith("bulk_delete/")
        for distinct_id in json.loads(call.body)["distinct_ids"]
    )
    assert erased == Counter({f"id-{n}": 1 for n in range(200)})  # each id sent exactly once


def test_a_worker_killed_mid_request_is_taken_over_after_its_lease(sandbox):
    (request_id,) = pending_requests(1)
    sandbox.faults.add(None, times=1, latency_ms=5000, path_prefix="/api/")
    victim = subprocess.Popen(
        [sys.executable, "manage.py", "erasure_worker", "--name", "victim", "--idle", "0.2"],
        cwd=ROOT,
        env=worker_env(sandbox.url, lease_seconds=1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        claimed = ErasureRequest.objects.filter(pk=request_id, leased_by="victim")
        wait_until(claimed.exists)
        time.sleep(0.5)  # now inside its 5 s call to PostHog
        victim.send_signal(signal.SIGKILL)  # mid-call: nothing recorded
    finally:
        victim.wait(timeout=10)

    request = ErasureRequest.objects.get(pk=request_id)
    assert (request.status, request.leased_by) == ("in_progress", "victim")
    with override_settings(CONSENT_ERASURE_LEASE_SECONDS=1):
        assert erasure_claim(worker="rescuer") == []  # the lease still holds
        time.sleep(1.1)
        (taken,) = erasure_claim(worker="rescuer")
        assert erasure_process(requests=[taken], worker="rescuer")[0].status == "succeeded"
    assert list(ErasureAttempt.objects.values_list("worker", flat=True)) == ["rescuer"]


def worker_env(sandbox_url: str, lease_seconds: int) -> dict[str, str]:
    database = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "POSTHOG_APP_HOST": sandbox_url,
        "POSTHOG_PROJECT_ID": "1",
        "POSTHOG_PERSONAL_API_KEY": "phx_sandbox",
        "CONSENT_ERASURE_LEASE_SECONDS": str(lease_seconds),
        "CONSENT_ERASURE_DELAY_SECONDS": "0",
    }


def test_requests_not_yet_due_are_not_claimed(sandbox):
    (request_id,) = pending_requests(1)
    ErasureRequest.objects.filter(pk=request_id).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    assert erasure_claim(worker="early") == []
