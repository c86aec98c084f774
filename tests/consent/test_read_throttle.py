"""The consent and config GETs are limited per visitor and per client address: 429 with
Retry-After and the error envelope, and a refused read writes nothing."""

from __future__ import annotations

import pytest
from django.test import override_settings

from consent_service.ledger.models import Subject
from tests.conftest import Visitor

pytestmark = pytest.mark.django_db


@override_settings(CONSENT_READ_RATE_PER_VISITOR="2/min", CONSENT_READ_RATE_PER_IP="0")
@pytest.mark.parametrize("read", ["config", "consent", "history"])
def test_a_visitor_over_its_read_limit_gets_429_with_retry_after(read):
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201  # the visitor cookie
    visitor.config()
    visitor.consent()
    refused = getattr(visitor, read)()
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 31
    assert Visitor().config().status_code == 200  # no cookie yet: only its address counts


@override_settings(CONSENT_READ_RATE_PER_VISITOR="0", CONSENT_READ_RATE_PER_IP="3/min")
def test_new_visitors_from_one_address_share_its_limit_and_a_refusal_writes_nothing():
    statuses = [Visitor().consent(HTTP_SEC_GPC="1").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert not Subject.objects.exists()


@override_settings(CONSENT_READ_RATE_PER_VISITOR="1/min", CONSENT_READ_RATE_PER_IP="1/min")
def test_writes_keep_their_own_limit():
    visitor = Visitor()
    visitor.csrf_token  # noqa: B018  (the config GET that sets the CSRF cookie)
    assert visitor.decide({"analytics": True}).status_code == 201
    assert visitor.withdraw().status_code == 201
