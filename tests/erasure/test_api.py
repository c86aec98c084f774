from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.services import erasure_claim, erasure_process
from consent_service.ledger.models import ConsentRecord, Subject, SubjectIdentifier
from tests.api.contract import assert_error, assert_matches_schema
from tests.conftest import GRANT_ALL, Visitor, anonymous_id, identified_id_of

pytestmark = pytest.mark.django_db

REQUESTS_URL = "/api/v1/erasure-requests/"
ADA = anonymous_id("ada")
BOB = anonymous_id("bob")
LAPTOP = anonymous_id("laptop")
PHONE = anonymous_id("anon")
NOBODY = anonymous_id("nobody")


def detail_url(pk: int) -> str:
    return f"{REQUESTS_URL}{pk}/"


@pytest.fixture
def staff_user() -> User:
    return User.objects.create_user("dpo", password="irrelevant-password-42", is_staff=True)


@pytest.fixture
def staff(staff_user: User) -> Visitor:
    """A staff member's browser: session login, CSRF enforced."""
    browser = Visitor()
    browser.log_in(staff_user)
    return browser


def tracked_subject(make_visitor: Any, distinct_id: str, user: User | None = None) -> Subject:
    """A subject that granted analytics under this PostHog distinct_id."""
    visitor: Visitor = make_visitor()
    if user is not None:
        visitor.log_in(user)
    assert visitor.decide(GRANT_ALL, distinct_id=distinct_id).status_code == 201
    return SubjectIdentifier.objects.get(value=distinct_id).subject


def request_erasure(staff: Visitor, body: Any) -> Any:
    return staff.post(REQUESTS_URL, body)


def run_one_round() -> None:
    erasure_process(requests=erasure_claim(worker="t"), worker="t")


@pytest.mark.parametrize("target", ["user_id", "subject_id", "distinct_id"])
def test_staff_request_erasure_by_each_target(staff, staff_user, make_visitor, target):
    customer = User.objects.create_user("ada")
    subject = tracked_subject(make_visitor, ADA, user=customer)
    minted = identified_id_of(customer)
    value = {"user_id": customer.pk, "subject_id": str(subject.uuid), "distinct_id": ADA}

    response = request_erasure(staff, {target: value[target], "note": "ticket 42"})

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "private, no-store"
    body = response.json()
    assert_matches_schema(body, "ErasureRequestDetail")
    erasure = ErasureRequest.objects.get()
    assert body["id"] == erasure.pk
    assert body["subject"] == str(subject.uuid)
    assert body["user_id"] == customer.pk
    # The user's identified id, minted by the service, is erased with the browser's.
    assert body["distinct_ids"] == sorted([ADA, minted])
    assert erasure.distinct_ids == body["distinct_ids"]
    assert (body["reason"], body["status"], body["note"]) == ("api", "pending", "ticket 42")
    assert body["requested_by"] == f"user:{staff_user.pk}:dpo"
    assert body["calls"] == []
    assert erasure.requested_by == staff_user
    withdrawal = ConsentRecord.objects.filter(subject=subject).latest("seq")
    assert (withdrawal.action, withdrawal.source) == ("withdraw", "admin")
    assert set(withdrawal.choices.values()) == {False}
    assert SubjectIdentifier.objects.get(value=ADA).refused_at is not None


def test_a_merged_subject_is_erased_through_the_subject_it_joined(staff, make_visitor):
    customer = User.objects.create_user("ada")
    tracked_subject(make_visitor, LAPTOP, user=customer)
    minted = identified_id_of(customer)
    phone: Visitor = make_visitor()
    phone.decide(GRANT_ALL, distinct_id=PHONE)
    anonymous = SubjectIdentifier.objects.get(value=PHONE).subject
    phone.log_in(customer)
    phone.consent()  # logging in links the anonymous subject into the user's
    anonymous.refresh_from_db()
    assert anonymous.merged_into == Subject.objects.get(user=customer)

    response = request_erasure(staff, {"subject_id": str(anonymous.uuid)})

    assert response.status_code == 201
    assert response.json()["subject"] == str(anonymous.merged_into.uuid)
    assert response.json()["distinct_ids"] == sorted([PHONE, LAPTOP, minted])


def test_a_second_request_joins_the_one_waiting(staff, make_visitor):
    tracked_subject(make_visitor, ADA)

    first = request_erasure(staff, {"distinct_id": ADA}).json()
    second = request_erasure(staff, {"distinct_id": ADA, "note": "again"}).json()

    assert second["id"] == first["id"]
    assert ErasureRequest.objects.count() == 1
    assert "joined by api: again" in second["note"]


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, None),
        ({"note": "no target"}, None),
        ({"user_id": 1, "distinct_id": ADA}, None),
        ({"distinct_id": ADA, "source": "admin"}, "source"),
        ({"user_id": "1"}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 0}, "user_id"),
        ({"subject_id": "not-a-uuid"}, "subject_id"),
        ({"distinct_id": [ADA]}, "distinct_id"),
        ({"distinct_id": "x" * 201}, "distinct_id"),
        ({"distinct_id": ADA, "note": "x" * 2001}, "note"),
        ([ADA], None),
    ],
)
def test_invalid_bodies_are_refused(staff, make_visitor, body, attr):
    tracked_subject(make_visitor, ADA)

    response = request_erasure(staff, body)

    assert_error(response, 400, "invalid_input", attr=attr, error_type="validation_error")
    assert ErasureRequest.objects.count() == 0
    assert not ConsentRecord.objects.filter(source="admin").exists()


def test_a_body_that_is_not_json_is_refused(staff):
    assert_error(request_erasure(staff, "{"), 400, "parse_error")


@pytest.mark.parametrize(
    "body",
    [{"user_id": 999}, {"subject_id": str(uuid.uuid4())}, {"distinct_id": NOBODY}],
)
def test_an_unknown_target_is_not_found(staff, make_visitor, body):
    tracked_subject(make_visitor, ADA)

    response = request_erasure(staff, body)

    assert_error(response, 404, "unknown_subject", error_type="not_found")
    assert ErasureRequest.objects.count() == 0


@pytest.fixture
def one_request(staff, make_visitor) -> int:
    tracked_subject(make_visitor, ADA)
    pk: int = request_erasure(staff, {"distinct_id": ADA}).json()["id"]
    return pk


@pytest.mark.parametrize("who", ["anonymous", "visitor", "non_staff"])
def test_only_staff_may_use_the_api(make_visitor, one_request, who):
    browser: Visitor = make_visitor()
    if who == "visitor":
        browser.decide(GRANT_ALL, distinct_id=BOB)
    if who == "non_staff":
        browser.log_in(User.objects.create_user("bob"))
    expected = "not_authenticated" if who != "non_staff" else "permission_denied"

    responses = [
        browser.client.get(REQUESTS_URL),
        browser.client.get(detail_url(one_request)),
        browser.post(REQUESTS_URL, {"distinct_id": ADA}),
    ]

    for response in responses:
        assert_error(response, 403, expected)
    assert ErasureRequest.objects.count() == 1


def test_staff_writes_need_the_csrf_token(staff, make_visitor):
    tracked_subject(make_visitor, ADA)

    response = staff.client.post(
        REQUESTS_URL, {"distinct_id": ADA}, content_type="application/json"
    )

    assert_error(response, 403, "csrf_failed")
    assert ErasureRequest.objects.count() == 0


def test_an_unknown_request_is_not_found(staff):
    assert_error(staff.client.get(detail_url(12345)), 404, "not_found")


def test_the_list_is_newest_first_and_filters_by_status(staff, make_visitor, sandbox):
    tracked_subject(make_visitor, ADA)
    tracked_subject(make_visitor, BOB)
    older = request_erasure(staff, {"distinct_id": ADA}).json()["id"]
    run_one_round()
    newer = request_erasure(staff, {"distinct_id": BOB}).json()["id"]

    everything = staff.client.get(REQUESTS_URL).json()
    succeeded = staff.client.get(REQUESTS_URL, {"status": "succeeded"}).json()
    pending = staff.client.get(REQUESTS_URL, {"status": "pending"}).json()
    first_page = staff.client.get(REQUESTS_URL, {"page_size": "1"}).json()
    second_page = staff.client.get(first_page["next"]).json()

    assert_matches_schema(everything, "PaginatedErasureRequestList")
    assert [item["id"] for item in everything["results"]] == [newer, older]
    assert [item["id"] for item in succeeded["results"]] == [older]
    assert [item["id"] for item in pending["results"]] == [newer]
    assert [item["id"] for item in first_page["results"] + second_page["results"]] == [
        newer,
        older,
    ]
    assert "calls" not in everything["results"][0]


def test_an_unknown_status_filter_is_refused(staff):
    response = staff.client.get(REQUESTS_URL, {"status": "done"})

    assert_error(response, 400, "invalid_input", attr="status")


def test_detail_shows_every_call_made_to_posthog(staff, make_visitor, sandbox):
    subject = tracked_subject(make_visitor, ADA)
    pk = request_erasure(staff, {"distinct_id": ADA}).json()["id"]

    run_one_round()
    body = staff.client.get(detail_url(pk)).json()

    assert_matches_schema(body, "ErasureRequestDetail")
    assert body["status"] == "succeeded"
    assert body["outcome"] in {"deleted", "already_gone"}
    assert body["attempts"] == 1
    assert body["completed_at"] is not None
    assert body["overdue"] is False
    assert body["subject"] == str(subject.uuid)
    [call] = body["calls"]
    assert call["round"] == 1
    assert call["worker"] == "t"
    assert (call["method"], call["path"]) == ("POST", "/api/projects/1/persons/bulk_delete/")
    assert call["status_code"] == 202
    assert call["verdict"] in {"ok", "gone"}
    assert call["error"] == ""
    assert sandbox.persons.deletions


def test_an_invalid_cursor_is_not_found(staff):
    response = staff.client.get(REQUESTS_URL, {"cursor": "bogus"})

    assert_error(response, 404, "not_found")
