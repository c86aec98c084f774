"""The worker against the sandbox's persons API over loopback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from consent_service.erasure.models import ErasureAttempt, ErasureRequest
from consent_service.erasure.services import (
    erasure_claim,
    erasure_confirm_due,
    erasure_counts,
    erasure_process,
    erasure_report_overdue,
)
from consent_service.ledger.models import ConsentEvidence, Subject
from consent_service.ledger.verification import ledger_verify
from tests.conftest import TOKEN, anonymous_id, delivered
from tests.erasure.helpers import (
    PAGEVIEW,
    only_request,
    run_worker,
    tracked_visitor,
)

pytestmark = pytest.mark.django_db
BRAND_NEW = anonymous_id("brand-new")  # claimable: a fresh posthog-js identity


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(timezone.now(), tick=True)
    return time_machine


@pytest.fixture
def withdrawn(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)
    assert sandbox.persons.all()
    visitor.withdraw()
    return visitor


def test_a_withdrawal_deletes_the_person_in_posthog(sandbox, withdrawn):
    assert run_worker() == ["succeeded"]

    request = only_request()
    assert request.outcome == "deleted"
    assert request.completed_at is not None
    assert sandbox.persons.all() == []
    assert sandbox.store.events == []  # delete_events was sent
    deletion = sandbox.persons.deletions[0]
    assert deletion["how"] == "bulk_delete"
    assert set(request.distinct_ids) <= set(deletion["distinct_ids"]) | set(deletion["ids"])
    call = request.calls.get()
    assert (call.method, call.status_code, call.verdict) == ("POST", 202, "ok")


def test_503_three_times_then_success_takes_four_rounds_and_one_deletion(sandbox, withdrawn, clock):
    sandbox.faults.add(503, times=3, path_prefix="/api/")

    statuses = []
    for _ in range(4):
        statuses += run_worker()
        clock.shift(timedelta(days=1))

    assert statuses == ["pending", "pending", "pending", "succeeded"]
    request = only_request()
    assert request.attempts == 4
    assert list(request.calls.values_list("status_code", flat=True)) == [503, 503, 503, 202]
    assert len(sandbox.persons.deletions) == 1


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured_in_both_forms(sandbox, withdrawn, form):
    wait = timedelta(hours=2)
    value = "7200" if form == "seconds" else format_datetime(datetime.now(UTC) + wait, usegmt=True)
    sandbox.faults.add(429, times=1, retry_after=value, path_prefix="/api/")

    before = timezone.now()
    assert run_worker() == ["pending"]

    request = only_request()
    assert request.next_attempt_at >= before + wait - timedelta(seconds=2)
    assert "429" in request.last_error
    assert run_worker() == []  # not due yet


def test_a_timeout_is_retried(sandbox, withdrawn, clock):
    sandbox.faults.add(503, times=1, latency_ms=1500, path_prefix="/api/")  # timeout 1 s

    assert run_worker() == ["pending"]
    assert "timeout" in only_request().last_error
    clock.shift(timedelta(hours=1))
    assert run_worker() == ["succeeded"]


def test_a_dropped_connection_is_retried(sandbox, withdrawn, clock):
    sandbox.faults.add(drop=True, times=1, path_prefix="/api/")

    assert run_worker() == ["pending"]
    assert "network" in only_request().last_error
    clock.shift(timedelta(hours=1))
    assert run_worker() == ["succeeded"]


@override_settings(POSTHOG_PERSONAL_API_KEY="phx_wrong")
def test_a_bad_key_fails_at_once_with_a_clear_error(sandbox, withdrawn):
    assert run_worker() == ["failed"]

    request = only_request()
    assert request.attempts == 1
    assert "HTTP 401" in request.last_error
    assert sandbox.persons.all() != []


def test_no_attempt_count_ends_a_request_it_retries_until_done(sandbox, withdrawn, clock):
    sandbox.faults.add(503, times=None, path_prefix="/api/")
    for _ in range(30):
        run_worker()
        clock.shift(timedelta(days=1))
    request = only_request()
    assert (request.status, request.attempts) == ("pending", 30)

    sandbox.faults.clear()
    assert run_worker() == ["succeeded"]


def test_an_overdue_request_is_logged_once_and_counted(sandbox, withdrawn, clock, caplog):
    sandbox.faults.add(503, times=None, path_prefix="/api/")
    run_worker()
    clock.shift(timedelta(days=26))

    with caplog.at_level(logging.ERROR, logger="consent_service.erasure"):
        assert erasure_report_overdue() == 1
        assert erasure_report_overdue() == 0

    assert len([r for r in caplog.records if "overdue" in r.getMessage()]) == 1
    assert erasure_counts() == {"overdue": 1, "misconfigured": 0, "failed": 0}


def test_backoff_grows_and_stays_under_the_cap(sandbox, withdrawn, clock):
    sandbox.faults.add(503, times=None, path_prefix="/api/")
    waits = []
    for _ in range(6):
        now = timezone.now()
        run_worker()
        waits.append((only_request().next_attempt_at - now).total_seconds())
        clock.shift(timedelta(days=1))

    assert waits == sorted(waits)
    assert 180 <= waits[0] <= 180 * 1.2 + 1
    assert max(waits) <= 6 * 3600 * 1.2 + 1


def test_a_person_already_gone_counts_as_done(sandbox, withdrawn):
    sandbox.persons.clear()

    assert run_worker() == ["succeeded"]
    assert only_request().outcome == "already_gone"


@override_settings(CONSENT_ERASURE_STRATEGY="per_person")
def test_the_per_person_strategy_finds_then_deletes_each_person(sandbox, withdrawn):
    persons = len(sandbox.persons.all())

    assert run_worker() == ["succeeded"]

    methods = list(only_request().calls.values_list("method", flat=True))
    assert methods.count("DELETE") == persons
    assert "GET" in methods
    assert sandbox.persons.all() == []
    assert sandbox.persons.deletions[0]["flags"]["delete_events"] is True


def test_a_worker_whose_lease_expired_cannot_finish_over_another(sandbox, withdrawn, clock):
    (first,) = erasure_claim(worker="dead")
    clock.shift(timedelta(minutes=10))  # the lease (300 s) is over

    (taken,) = erasure_claim(worker="alive")
    assert erasure_process(requests=[taken], worker="alive")[0].status == "succeeded"
    (late,) = erasure_process(requests=[first], worker="dead")

    assert late.status == "succeeded"  # reports what is true, changes nothing
    assert set(ErasureAttempt.objects.values_list("worker", flat=True)) == {"alive", "dead"}
    assert only_request().leased_by == ""


def test_after_erasure_local_personal_data_is_pseudonymised_and_the_chain_holds(sandbox, withdrawn):
    run_worker()

    subject = Subject.objects.get()
    assert subject.erased_at is not None
    evidence = ConsentEvidence.objects.filter(record__subject=subject)
    assert all(e.ip_truncated == "" and e.user_agent == "" for e in evidence)
    assert ledger_verify().ok


def test_after_erasure_proxied_events_with_the_erased_ids_are_dropped(sandbox, withdrawn):
    run_worker()
    withdrawn.decide({"analytics": True, "session_replay": True})

    before = list(sandbox.store.events)  # what erasure left is not this test's matter

    response = withdrawn.client.post("/ph/i/v0/e/", PAGEVIEW.body, content_type="text/plain")

    assert response.json() == {"status": 1}
    assert delivered(sandbox) == before


def test_deleting_a_user_requests_their_erasure(sandbox, make_visitor, django_user_model):
    user = django_user_model.objects.create_user("leaving", password="pw")
    user_id = user.pk
    visitor = make_visitor()
    visitor.log_in(user)
    tracked = tracked_visitor(lambda: visitor)
    assert tracked is visitor

    user.delete()

    request = only_request()
    assert (request.reason, request.user_id) == ("user_deleted", str(user_id))
    assert request.distinct_ids
    assert run_worker() == ["succeeded"]


def test_the_worker_command_drains_what_is_due_and_exits(sandbox, withdrawn):
    call_command("erasure_worker", "--once", "--name", "cmd")

    assert only_request().status == ErasureRequest.Status.SUCCEEDED
    assert only_request().calls.get().worker == "cmd"


def test_the_config_asks_for_a_fresh_identity_after_erasure_until_new_ids_arrive(
    sandbox, withdrawn
):
    run_worker()
    assert withdrawn.config().json()["reset_identity"] is True

    withdrawn.decide({"analytics": True, "session_replay": True})
    fresh = {"event": "$pageview", "properties": {"distinct_id": BRAND_NEW}}
    left = len(sandbox.store.events)  # what erasure left is not this test's matter
    withdrawn.client.post("/ph/e/", json.dumps(fresh), content_type="text/plain")

    assert withdrawn.config().json()["reset_identity"] is False
    assert [e.distinct_id for e in delivered(sandbox)[left:]] == [BRAND_NEW]


def test_a_burst_of_withdrawals_shares_bulk_calls(sandbox, make_visitor):
    for n in range(3):
        visitor = make_visitor()
        visitor.decide({"analytics": True})
        event = {"event": "e", "properties": {"distinct_id": anonymous_id(n)}}
        visitor.client.post("/ph/e/", json.dumps(event), content_type="text/plain")
        visitor.withdraw()

    assert run_worker() == ["succeeded"] * 3

    bulk_calls = [r for r in sandbox.store.requests if r.path.endswith("bulk_delete/")]
    assert len(bulk_calls) == 1
    assert ErasureAttempt.objects.count() == 3  # each request keeps its own proof of the call
    assert sandbox.persons.all() == []


def test_a_deletion_is_confirmed_later_when_no_person_is_left(sandbox, withdrawn, clock):
    assert run_worker() == ["succeeded"]
    assert only_request().confirmed_at is None
    assert [p.status for p in erasure_confirm_due(worker="w")] == []  # not yet due

    clock.shift(timedelta(minutes=11))
    assert [p.status for p in erasure_confirm_due(worker="w")] == ["confirmed"]

    request = only_request()
    assert request.confirmed_at is not None
    assert erasure_confirm_due(worker="w") == []


def test_a_person_recreated_after_the_deletion_is_deleted_again(sandbox, withdrawn, clock):
    assert run_worker() == ["succeeded"]
    late = only_request().distinct_ids[0]
    event = {"event": "late", "distinct_id": late, "properties": {"$process_person_profile": True}}
    httpx.post(f"{sandbox.url}/batch/", json={"api_key": TOKEN, "batch": [event]})
    assert sandbox.persons.find(late) is not None  # an event in flight made it again

    clock.shift(timedelta(minutes=11))
    assert [p.status for p in erasure_confirm_due(worker="w")] == ["unconfirmed"]
    assert sandbox.persons.find(late) is None
    assert "deleted again" in only_request().note

    clock.shift(timedelta(minutes=11))
    assert [p.status for p in erasure_confirm_due(worker="w")] == ["confirmed"]
