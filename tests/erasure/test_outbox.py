from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.test import RequestFactory

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.revocation import consent_withdraw
from consent_service.ledger.http import caller_from_request
from consent_service.ledger.models import ConsentRecord, SubjectIdentifier
from tests.conftest import anonymous_id
from tests.erasure.helpers import tracked_visitor

pytestmark = pytest.mark.django_db
ANON = anonymous_id("anon-42")


def test_withdrawal_creates_exactly_one_request_with_the_ids(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)

    assert visitor.withdraw().status_code == 201

    request = ErasureRequest.objects.get()
    assert request.reason == "withdrawal"
    assert request.status == "pending"
    assert {"user-1", "01a21f7b-5f17-74f3-b340-499214275eb4"} <= set(request.distinct_ids)
    assert request.requested_by_label == "visitor"


def test_a_withdrawal_rolled_back_leaves_neither_record_nor_request(
    sandbox, make_visitor, monkeypatch
):
    visitor = tracked_visitor(make_visitor)
    records = ConsentRecord.objects.count()

    def crash(**kwargs):
        raise RuntimeError("crash after the ledger insert, before commit")

    # The request is the last write of the transaction: fail there.
    monkeypatch.setattr("consent_service.erasure.revocation.erasure_request_create", crash)
    with pytest.raises(RuntimeError):
        visitor.withdraw()

    assert ConsentRecord.objects.count() == records
    assert ErasureRequest.objects.count() == 0
    assert SubjectIdentifier.objects.filter(refused_at__isnull=False).count() == 0


def test_turning_analytics_off_after_a_grant_requests_erasure(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)

    visitor.decide({"analytics": False})

    assert ErasureRequest.objects.get().reason == "refusal"


def test_a_refusal_that_never_followed_a_grant_erases_nothing(sandbox, make_visitor):
    visitor = make_visitor()
    visitor.decide({"analytics": False, "session_replay": False}, distinct_id=ANON)
    visitor.withdraw()

    assert ErasureRequest.objects.count() == 0
    assert SubjectIdentifier.objects.get(value=ANON).refused_at is None


def test_a_second_trigger_joins_the_waiting_request(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)
    visitor.withdraw()
    visitor.decide({"analytics": True})
    late = {"event": "x", "distinct_id": anonymous_id(1)}
    visitor.client.post("/ph/e/", json.dumps(late), content_type="text/plain")

    visitor.withdraw()

    request = ErasureRequest.objects.get()
    assert anonymous_id(1) in request.distinct_ids
    assert "joined by withdrawal" in request.note


def test_withdrawal_inside_an_outer_transaction_is_atomic_with_it(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)
    cookie = visitor.client.cookies["consent_vid"].value
    request = RequestFactory().post("/", HTTP_COOKIE=f"consent_vid={cookie}")
    request.user = AnonymousUser()
    caller = caller_from_request(request)

    with pytest.raises(RuntimeError), transaction.atomic():
        consent_withdraw(caller=caller, source="api")
        raise RuntimeError("the caller's transaction fails after the withdrawal")

    assert ErasureRequest.objects.count() == 0
