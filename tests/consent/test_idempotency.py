from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import timezone

from consent_service.core.visitor import visitor_for
from consent_service.ledger.chain import canonical_json
from consent_service.ledger.models import ConsentRecord, IdempotencyKey
from tests.api.contract import assert_error, assert_matches_schema
from tests.conftest import CONSENT_URL, WITHDRAW_URL

pytestmark = pytest.mark.django_db

GRANT = {"analytics": True, "session_replay": True}
DECISION = {"purposes": GRANT, "policy_version": "1"}
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def visitor_id(visitor) -> str:
    """The unsigned visitor id, read with the product's own cookie semantics."""
    request = RequestFactory().get("/")
    request.COOKIES = {"consent_vid": visitor.visitor_id_cookie}
    found = visitor_for(request)
    assert not found.is_new
    return found.id


def in_flight_row(
    visitor, key: str, body: dict[str, Any], url: str = CONSENT_URL
) -> IdempotencyKey:
    visitor.config()  # issues the visitor cookie
    fingerprint = hashlib.sha256(canonical_json(["POST", url, body])).hexdigest()
    return IdempotencyKey.objects.create(
        scope=f"visitor:{visitor_id(visitor)}",
        key=key,
        fingerprint=fingerprint,
        status=IdempotencyKey.Status.IN_PROGRESS,
        created_at=timezone.now(),
    )


def test_replay_returns_the_same_body_and_status_and_records_once(visitor):
    first = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))
    replay = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert_matches_schema(replay.json(), "ConsentState")
    assert replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert ConsentRecord.objects.count() == 1
    assert IdempotencyKey.objects.get().status == IdempotencyKey.Status.DONE


def test_replay_of_a_withdrawal_records_once(visitor):
    first = visitor.withdraw(headers=keyed("w-1"))
    replay = visitor.withdraw(headers=keyed("w-1"))

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert ConsentRecord.objects.count() == 1


def test_replay_still_answers_the_original_after_a_later_decision(visitor):
    first = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))
    visitor.decide({"analytics": False})

    replay = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert replay.json() == first.json()
    assert visitor.consent().json()["purposes"]["analytics"]["granted"] is False
    assert ConsentRecord.objects.count() == 2


def test_same_key_with_a_different_body_gets_422(visitor):
    visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    response = visitor.decide({"analytics": False}, headers=keyed("k-1"))

    assert_error(
        response, 422, "idempotency_key_reused", attr="Idempotency-Key", error_type="unprocessable"
    )
    assert ConsentRecord.objects.count() == 1


def test_same_key_on_another_endpoint_gets_422(visitor):
    visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    response = visitor.withdraw(headers=keyed("k-1"))

    assert_error(response, 422, "idempotency_key_reused", attr="Idempotency-Key")
    assert ConsentRecord.objects.count() == 1


def test_a_duplicate_while_the_first_is_in_flight_gets_409(visitor):
    in_flight_row(visitor, "k-1", DECISION)

    response = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert_error(
        response, 409, "idempotency_key_in_flight", attr="Idempotency-Key", error_type="conflict"
    )
    assert ConsentRecord.objects.count() == 0
    assert IdempotencyKey.objects.get().status == IdempotencyKey.Status.IN_PROGRESS


def test_a_different_body_under_an_in_flight_key_gets_422(visitor):
    in_flight_row(visitor, "k-1", DECISION)

    response = visitor.decide({"analytics": False}, headers=keyed("k-1"))

    assert_error(response, 422, "idempotency_key_reused", attr="Idempotency-Key")


def test_an_in_flight_claim_just_under_60_seconds_old_is_not_taken_over(visitor, time_machine):
    time_machine.move_to(START)
    in_flight_row(visitor, "k-1", DECISION)
    time_machine.move_to(START + timedelta(seconds=59))

    response = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert_error(response, 409, "idempotency_key_in_flight", attr="Idempotency-Key")


def test_an_abandoned_claim_older_than_60_seconds_is_taken_over(visitor, time_machine):
    time_machine.move_to(START)
    in_flight_row(visitor, "k-1", DECISION)
    time_machine.move_to(START + timedelta(seconds=61))

    response = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert ConsentRecord.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert row.status == IdempotencyKey.Status.DONE
    assert row.response_body == response.json()
    replay = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))
    assert replay["Idempotent-Replayed"] == "true"
    assert ConsentRecord.objects.count() == 1


def test_keys_are_scoped_per_visitor(make_visitor):
    alice, bob = make_visitor(), make_visitor()
    alice_response = alice.post(CONSENT_URL, DECISION, headers=keyed("shared"))

    bob_response = bob.decide({"analytics": False}, headers=keyed("shared"))

    assert bob_response.status_code == 201
    assert "Idempotent-Replayed" not in bob_response
    assert bob_response.json()["purposes"]["analytics"]["granted"] is False
    assert alice_response.json()["purposes"]["analytics"]["granted"] is True
    assert ConsentRecord.objects.count() == 2


def test_another_visitor_replaying_the_same_body_and_key_gets_a_fresh_write(make_visitor):
    alice, bob = make_visitor(), make_visitor()
    alice.post(CONSENT_URL, DECISION, headers=keyed("shared"))

    response = bob.post(CONSENT_URL, DECISION, headers=keyed("shared"))

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert ConsentRecord.objects.count() == 2
    assert len({record.subject_id for record in ConsentRecord.objects.all()}) == 2
    assert IdempotencyKey.objects.filter(key="shared").count() == 2


@pytest.mark.parametrize(
    "bad", [{"analytics": "yes"}, {"fingerprinting": True}, {}], ids=["type", "unknown", "empty"]
)
def test_a_failed_request_releases_its_key_for_a_corrected_retry(visitor, bad):
    failed = visitor.decide(bad, headers=keyed("k-1"))
    assert failed.status_code == 400
    assert not IdempotencyKey.objects.exists()

    retry = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert ConsentRecord.objects.count() == 1


def test_a_stale_policy_conflict_releases_the_key(visitor):
    failed = visitor.decide(GRANT, policy_version="0", headers=keyed("k-1"))
    assert failed.status_code == 409

    retry = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert retry.status_code == 201


def test_malformed_json_with_a_key_claims_nothing(visitor):
    failed = visitor.post(CONSENT_URL, "{not json", headers=keyed("k-1"))
    assert_error(failed, 400, "parse_error")
    assert not IdempotencyKey.objects.exists()

    retry = visitor.post(CONSENT_URL, DECISION, headers=keyed("k-1"))

    assert retry.status_code == 201


def test_a_body_too_large_or_not_json_claims_nothing(visitor):
    oversized = visitor.post(CONSENT_URL, " " * 70_000 + "{}", headers=keyed("k-1"))
    not_json = visitor.post(CONSENT_URL, "{}", headers=keyed("k-1"), content_type="text/plain")

    assert_error(oversized, 413, "body_too_large")
    assert_error(not_json, 415, "unsupported_media_type")
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ["k" * 256, "k" * 300, "has space", "tab\there", "ключ"])
def test_an_invalid_key_gets_400(visitor, key):
    response = visitor.post(CONSENT_URL, DECISION, headers=keyed(key))

    assert_error(response, 400, "invalid_input", attr="Idempotency-Key")
    assert ConsentRecord.objects.count() == 0
    assert not IdempotencyKey.objects.exists()


def test_the_longest_valid_key_is_accepted(visitor):
    response = visitor.post(CONSENT_URL, DECISION, headers=keyed("k" * 255))

    assert response.status_code == 201


def test_a_claim_is_scoped_to_the_visitor_id_in_the_cookie(visitor):
    visitor.withdraw(headers=keyed("w-1"))
    row = IdempotencyKey.objects.get()

    assert row.scope == f"visitor:{visitor_id(visitor)}"
    assert row.fingerprint == hashlib.sha256(canonical_json(["POST", WITHDRAW_URL, {}])).hexdigest()
