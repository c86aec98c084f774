from __future__ import annotations

import pytest

from consent_service.ledger.models import ConsentRecord

pytestmark = pytest.mark.django_db


def test_new_visitor_gets_a_prompt_and_a_cookie(visitor):
    response = visitor.consent()

    assert response.status_code == 200
    body = response.json()
    assert body["needs_prompt"] is True
    assert body["purposes"]["analytics"] == {
        "granted": False,
        "choice": None,
        "decided_at": None,
        "policy_version": None,
        "current": False,
    }
    assert visitor.visitor_id_cookie
    assert response.cookies["consent_vid"]["httponly"]
    assert response.cookies["consent_vid"]["samesite"] == "Lax"


def test_post_records_the_decision_and_answers_201(visitor):
    response = visitor.decide({"analytics": True, "session_replay": False})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["purposes"]["analytics"]["granted"] is True
    assert body["purposes"]["session_replay"]["granted"] is False
    assert body["needs_prompt"] is False
    assert ConsentRecord.objects.count() == 1
