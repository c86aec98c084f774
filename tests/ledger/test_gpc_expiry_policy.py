from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client, override_settings

from consent_service.ledger.models import (
    ConsentRecord,
    PolicyVersion,
    Purpose,
    Subject,
    SubjectIdentifier,
)
from consent_service.ledger.policies import policy_cache_clear, policy_version_publish
from tests.api.contract import assert_error, assert_matches_schema
from tests.conftest import CONFIG_URL, CONSENT_URL, GRANT_ALL, HISTORY_URL, Visitor

pytestmark = pytest.mark.django_db

GPC = {"Sec-GPC": "1"}
MAX_AGE = timedelta(days=395)
START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def granted(body: dict[str, Any]) -> dict[str, bool]:
    return {key: purpose["granted"] for key, purpose in body["purposes"].items()}


# --- Global Privacy Control -----------------------------------------------------------


def test_gpc_without_a_decision_reads_as_a_refusal_and_writes_nothing():
    visitor = Visitor(**GPC)

    body = visitor.consent().json()

    assert body["gpc"] is True
    assert body["needs_prompt"] is False
    assert granted(body) == {"analytics": False, "session_replay": False}
    assert all(purpose["current"] for purpose in body["purposes"].values())
    assert all(purpose["choice"] is False for purpose in body["purposes"].values())
    assert ConsentRecord.objects.count() == 0


def test_thirty_gpc_gets_without_a_cookie_write_nothing():
    """C15: reads never write, whatever headers they carry."""
    for _ in range(30):
        browser = Client(headers=GPC)
        for url in (CONFIG_URL, CONSENT_URL, HISTORY_URL):
            assert browser.get(url).status_code == 200

    assert ConsentRecord.objects.count() == 0
    assert Subject.objects.count() == 0
    assert SubjectIdentifier.objects.count() == 0


def test_gpc_on_the_config_call_turns_analytics_off():
    visitor = Visitor(**GPC)

    body = visitor.config().json()

    assert body["consent"]["gpc"] is True
    assert body["consent"]["needs_prompt"] is False
    assert body["options"]["opt_out_capturing_by_default"] is True
    assert body["options"]["disable_session_recording"] is True
    assert ConsentRecord.objects.count() == 0


def test_the_gpc_refusal_is_recorded_with_the_next_write():
    visitor = Visitor(**GPC)
    visitor.consent()

    visitor.decide({"analytics": True}, source="banner")

    records = list(ConsentRecord.objects.order_by("seq").values_list("source", "choices"))
    assert records == [("gpc", {"session_replay": False}), ("banner", {"analytics": True})]


def test_explicit_grant_after_gpc_is_honoured_and_marked_gpc():
    visitor = Visitor(**GPC)
    visitor.consent()

    response = visitor.decide({"analytics": True}, source="banner")

    assert response.status_code == 201
    body = response.json()
    assert body["purposes"]["analytics"]["granted"] is True
    assert body["purposes"]["session_replay"]["granted"] is False
    assert body["gpc"] is True
    grant = ConsentRecord.objects.order_by("-seq").first()
    assert grant is not None
    assert (grant.source, grant.gpc, grant.choices) == ("banner", True, {"analytics": True})


def test_a_later_gpc_request_does_not_override_an_explicit_grant():
    visitor = Visitor(**GPC)
    visitor.consent()
    visitor.decide(GRANT_ALL)

    body = visitor.consent().json()
    config = visitor.config().json()

    assert granted(body) == {"analytics": True, "session_replay": True}
    assert config["options"]["opt_out_capturing_by_default"] is False
    assert ConsentRecord.objects.count() == 1  # the grant covered everything GPC would


def test_gpc_refuses_only_purposes_without_a_decision(visitor):
    visitor.decide({"analytics": True})

    body = visitor.consent(**GPC).json()

    assert granted(body) == {"analytics": True, "session_replay": False}
    assert body["needs_prompt"] is False
    assert not ConsentRecord.objects.filter(source="gpc").exists()


@pytest.mark.parametrize("value", ["0", "", "yes", "1, 1"])
def test_a_sec_gpc_header_other_than_1_is_not_gpc(visitor, value):
    body = visitor.consent(**{"Sec-GPC": value}).json()

    assert body["gpc"] is False
    assert body["needs_prompt"] is True
    assert ConsentRecord.objects.count() == 0


def test_a_gpc_refusal_is_a_decision_that_withdraw_can_follow():
    visitor = Visitor(**GPC)
    visitor.consent()

    response = visitor.withdraw()

    assert response.status_code == 201
    assert [r["source"] for r in visitor.history().json()["results"]] == ["api"]


# --- Expiry ---------------------------------------------------------------------------


def test_expires_at_is_decided_at_plus_the_maximum_age(visitor, time_machine):
    time_machine.move_to(START)

    body = visitor.decide(GRANT_ALL).json()

    decided_at = parse(body["decided_at"])
    assert parse(body["expires_at"]) == decided_at + MAX_AGE
    assert parse(body["purposes"]["analytics"]["decided_at"]) == decided_at
    assert_matches_schema(body, "ConsentState")


def test_expires_at_is_the_earliest_current_decision(visitor, time_machine):
    time_machine.move_to(START)
    first = visitor.decide({"analytics": True}).json()
    time_machine.move_to(START + timedelta(days=10))

    body = visitor.decide({"session_replay": True}).json()

    assert parse(body["expires_at"]) == parse(first["decided_at"]) + MAX_AGE


def test_a_grant_still_counts_the_day_before_it_expires(visitor, time_machine):
    time_machine.move_to(START)
    visitor.decide(GRANT_ALL)
    time_machine.move_to(START + MAX_AGE - timedelta(days=1))

    body = visitor.consent().json()

    assert granted(body) == {"analytics": True, "session_replay": True}
    assert body["needs_prompt"] is False


def test_a_grant_no_longer_counts_after_the_maximum_age(visitor, time_machine):
    time_machine.move_to(START)
    visitor.decide(GRANT_ALL)
    time_machine.move_to(START + MAX_AGE + timedelta(seconds=1))

    body = visitor.consent().json()

    assert body["needs_prompt"] is True
    assert body["expires_at"] is None
    for purpose in body["purposes"].values():
        assert (purpose["granted"], purpose["current"], purpose["choice"]) == (False, False, True)


def test_an_expired_grant_turns_posthog_off_in_the_config(visitor, time_machine):
    time_machine.move_to(START)
    visitor.decide(GRANT_ALL)
    assert visitor.config().json()["options"]["opt_out_capturing_by_default"] is False
    time_machine.move_to(START + MAX_AGE + timedelta(minutes=1))

    body = visitor.config().json()

    assert body["options"]["opt_out_capturing_by_default"] is True
    assert body["options"]["opt_out_persistence_by_default"] is True
    assert body["options"]["disable_session_recording"] is True
    assert body["consent"]["needs_prompt"] is True


def test_deciding_again_after_expiry_renews_the_grant(visitor, time_machine):
    time_machine.move_to(START)
    visitor.decide(GRANT_ALL)
    time_machine.move_to(START + MAX_AGE + timedelta(days=1))

    body = visitor.decide(GRANT_ALL).json()

    assert body["needs_prompt"] is False
    assert parse(body["expires_at"]) > START + 2 * MAX_AGE


@override_settings(CONSENT_MAX_AGE_DAYS=30)
def test_the_maximum_age_follows_the_setting(visitor, time_machine):
    time_machine.move_to(START)
    body = visitor.decide(GRANT_ALL).json()
    assert parse(body["expires_at"]) == parse(body["decided_at"]) + timedelta(days=30)
    time_machine.move_to(START + timedelta(days=31))

    assert visitor.consent().json()["needs_prompt"] is True


def test_an_expired_decision_reads_as_refused_again_under_gpc(time_machine):
    visitor = Visitor(**GPC)
    time_machine.move_to(START)
    visitor.decide({"analytics": True, "session_replay": False})
    time_machine.move_to(START + MAX_AGE + timedelta(days=1))

    body = visitor.consent().json()

    assert body["needs_prompt"] is False
    assert granted(body) == {"analytics": False, "session_replay": False}
    assert ConsentRecord.objects.count() == 1


# --- Policy versions ------------------------------------------------------------------


def test_the_first_policy_version_does_not_ask_for_reconsent(visitor):
    visitor.consent()

    assert list(PolicyVersion.objects.values_list("version", "requires_reconsent")) == [
        ("1", False)
    ]


def test_a_policy_bump_asks_again(visitor):
    visitor.decide(GRANT_ALL)

    with override_settings(CONSENT_POLICY_VERSION="2"):
        body = visitor.consent().json()
        config = visitor.config().json()

    assert PolicyVersion.objects.get(version="2").requires_reconsent is True
    assert body["needs_prompt"] is True
    assert body["current_policy_version"] == "2"
    assert body["policy_version"] == "1"
    assert granted(body) == {"analytics": False, "session_replay": False}
    assert all(purpose["current"] is False for purpose in body["purposes"].values())
    assert config["options"]["opt_out_capturing_by_default"] is True


def test_after_a_bump_posting_the_old_version_gets_409(visitor):
    visitor.decide(GRANT_ALL)

    with override_settings(CONSENT_POLICY_VERSION="2"):
        response = visitor.decide(GRANT_ALL, policy_version="1")

    body = assert_error(response, 409, "stale_policy_version", attr="policy_version")
    assert body["extra"] == {"current_policy_version": "2"}
    assert ConsentRecord.objects.count() == 1


def test_after_a_bump_posting_the_new_version_works(visitor):
    visitor.decide(GRANT_ALL)

    with override_settings(CONSENT_POLICY_VERSION="2"):
        response = visitor.decide(GRANT_ALL, policy_version="2")
        later = visitor.consent().json()

    assert response.status_code == 201
    assert response.json()["needs_prompt"] is False
    assert later["policy_version"] == "2"
    assert granted(later) == {"analytics": True, "session_replay": True}


def test_a_bump_published_without_reconsent_keeps_existing_decisions(visitor):
    visitor.decide(GRANT_ALL)
    policy_version_publish(version="2", requires_reconsent=False)

    with override_settings(CONSENT_POLICY_VERSION="2"):
        body = visitor.consent().json()
        config = visitor.config().json()

    assert body["needs_prompt"] is False
    assert body["current_policy_version"] == "2"
    assert granted(body) == {"analytics": True, "session_replay": True}
    assert config["options"]["opt_out_capturing_by_default"] is False


def test_a_minor_bump_after_a_reconsent_bump_keeps_decisions_made_under_either(make_visitor):
    early, late = make_visitor(), make_visitor()
    early.decide(GRANT_ALL)
    with override_settings(CONSENT_POLICY_VERSION="2"):
        late.decide(GRANT_ALL, policy_version="2")
    policy_version_publish(version="2.1", requires_reconsent=False)

    with override_settings(CONSENT_POLICY_VERSION="2.1"):
        early_body = early.consent().json()
        late_body = late.consent().json()

    assert early_body["needs_prompt"] is True  # decided under 1, before the re-consent bump
    assert late_body["needs_prompt"] is False


def test_a_new_purpose_asks_again_but_keeps_existing_decisions(visitor):
    visitor.decide(GRANT_ALL)
    Purpose.objects.create(key="marketing", name="Marketing", position=9)
    policy_cache_clear()  # what the admin does on save; otherwise within CACHE_SECONDS

    body = visitor.consent().json()
    decided = visitor.decide({"marketing": False})

    assert body["needs_prompt"] is True
    assert body["purposes"]["marketing"]["choice"] is None
    assert body["purposes"]["analytics"]["granted"] is True
    assert decided.status_code == 201
    assert decided.json()["needs_prompt"] is False


def test_an_inactive_purpose_is_neither_shown_nor_accepted(visitor):
    Purpose.objects.filter(key="session_replay").update(active=False)
    policy_cache_clear()

    body = visitor.consent().json()
    response = visitor.decide({"session_replay": True})

    assert set(body["purposes"]) == {"analytics"}
    assert_error(response, 400, "invalid_input", attr="purposes.session_replay")
