"""Done means nothing is left (RELIABILITY.md J15): after erasure the PostHog-faithful sandbox
holds no event of any of the subject's ids, anonymous visitors included, for each strategy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from consent_service.ledger.models import SubjectIdentifier
from tests.conftest import (
    GRANT_ALL,
    TOKEN,
    Visitor,
    anonymous_id,
    forward_spool,
    identified_id_of,
    logged_in,
)
from tests.erasure.helpers import run_worker

pytestmark = pytest.mark.django_db

STRATEGIES = [pytest.param("bulk", id="bulk"), pytest.param("per_person", id="per_person")]


def anonymous_event(name: str, distinct_id: str, **properties: Any) -> dict[str, Any]:
    """As posthog-js sends it before identify() under identified_only: personless."""
    return {
        "event": name,
        "properties": {
            "distinct_id": distinct_id,
            "$device_id": distinct_id,
            "$process_person_profile": False,
            "token": TOKEN,
            **properties,
        },
    }


def browse(visitor: Visitor, *events: dict[str, Any]) -> None:
    body = json.dumps({"api_key": TOKEN, "batch": list(events)})
    assert visitor.client.post("/ph/i/v0/e/", body, content_type="text/plain").status_code == 200
    assert forward_spool().delivered == len(events)  # in PostHog before the withdrawal


def ids_of(visitor: Visitor) -> set[str]:
    subject_id = SubjectIdentifier.objects.filter(kind="visitor").latest("id").subject_id
    return set(
        SubjectIdentifier.objects.filter(subject_id=subject_id, kind="distinct_id").values_list(
            "value", flat=True
        )
    )


def bystander() -> None:
    """Someone else's events, which erasure must leave alone."""
    visitor = Visitor()
    visitor.decide(GRANT_ALL)
    browse(visitor, anonymous_event("$pageview", anonymous_id("bystander")))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_anonymous_visitor_who_withdraws_leaves_no_event(strategy, sandbox):
    bystander()
    visitor = Visitor()
    visitor.decide(GRANT_ALL)
    first, after_reset = anonymous_id("first"), anonymous_id("after-reset")
    browse(visitor, anonymous_event("$pageview", first), anonymous_event("clicked", first))
    browse(visitor, anonymous_event("$pageview", after_reset, **{"$device_id": first}))
    ids = ids_of(visitor)
    assert {first, after_reset} <= ids

    visitor.withdraw()
    with override_settings(CONSENT_ERASURE_STRATEGY=strategy):
        assert run_worker() == ["succeeded"]

    assert [e for e in sandbox.store.events if e.distinct_id in ids] == []
    assert [e.distinct_id for e in sandbox.store.events] == [anonymous_id("bystander")]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_identified_visitor_with_several_ids_leaves_no_event(
    strategy, sandbox, django_user_model
):
    bystander()
    ada = django_user_model.objects.create_user("ada", password="irrelevant-42")
    browser = logged_in(ada)
    anonymous = anonymous_id("ada-laptop")
    browser.decide(GRANT_ALL, distinct_id=anonymous)
    identified = identified_id_of(ada)
    identify = {
        "event": "$identify",
        "properties": {"distinct_id": identified, "$anon_distinct_id": anonymous, "token": TOKEN},
    }
    browse(browser, anonymous_event("$pageview", anonymous), identify)
    browse(browser, {"event": "paid", "properties": {"distinct_id": identified, "token": TOKEN}})
    ids = ids_of(browser)
    assert {anonymous, identified} <= ids

    browser.withdraw()
    with override_settings(CONSENT_ERASURE_STRATEGY=strategy):
        assert run_worker() == ["succeeded"]

    assert [e for e in sandbox.store.events if e.distinct_id in ids] == []
    assert sandbox.persons.find(identified) is None
    assert [e.distinct_id for e in sandbox.store.events] == [anonymous_id("bystander")]
