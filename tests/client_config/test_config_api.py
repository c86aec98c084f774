from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings
from django.utils.cache import has_vary_header

from consent_service.ledger.models import ConsentRecord
from tests.api.contract import assert_matches_schema
from tests.conftest import CONFIG_URL, CONSENT_URL, GRANT_ALL

pytestmark = pytest.mark.django_db


def test_config_has_the_documented_shape(visitor):
    response = visitor.config()

    assert response.status_code == 200
    body = response.json()
    assert_matches_schema(body, "ClientConfig")
    assert_matches_schema(body["options"], "PosthogOptions")
    assert_matches_schema(body["consent"], "ConsentState")
    assert body["api_host"] == "/ph"
    assert body["ui_host"] == "https://us.posthog.com"
    options = body["options"]
    assert options["api_host"] == "/ph"
    assert options["ui_host"] == body["ui_host"]
    assert options["person_profiles"] == "identified_only"
    assert options["capture_pageview"] == "history_change"
    assert options["capture_pageleave"] == "if_capture_pageview"
    assert options["session_recording"] == {"maskAllInputs": True, "sampleRate": 1.0}


def test_a_new_visitor_gets_everything_off_and_a_prompt(visitor):
    body = visitor.config().json()

    assert body["options"]["opt_out_capturing_by_default"] is True
    assert body["options"]["opt_out_persistence_by_default"] is True
    assert body["options"]["disable_session_recording"] is True
    assert body["consent"]["needs_prompt"] is True


@override_settings(POSTHOG_API_KEY="")
def test_config_is_disabled_without_a_project_token(visitor):
    body = visitor.config().json()

    assert body["enabled"] is False
    assert body["token"] == ""


@override_settings(POSTHOG_API_KEY="phc_test")
def test_config_is_enabled_with_a_project_token(visitor):
    body = visitor.config().json()

    assert body["enabled"] is True
    assert body["token"] == "phc_test"


def test_granting_analytics_turns_the_opt_outs_off(visitor):
    visitor.decide({"analytics": True, "session_replay": False})

    options = visitor.config().json()["options"]

    assert options["opt_out_capturing_by_default"] is False
    assert options["opt_out_persistence_by_default"] is False
    assert options["disable_session_recording"] is True


def test_granting_both_enables_session_recording(visitor):
    visitor.decide(GRANT_ALL)

    options = visitor.config().json()["options"]

    assert options["disable_session_recording"] is False


def test_replay_without_analytics_keeps_recording_off(visitor):
    visitor.decide({"analytics": False, "session_replay": True})

    options = visitor.config().json()["options"]

    assert options["opt_out_capturing_by_default"] is True
    assert options["disable_session_recording"] is True


def test_withdrawal_turns_everything_off_again(visitor):
    visitor.decide(GRANT_ALL)
    visitor.withdraw()

    body = visitor.config().json()

    assert body["options"]["opt_out_capturing_by_default"] is True
    assert body["options"]["disable_session_recording"] is True
    assert body["consent"]["needs_prompt"] is False


@override_settings(
    CONSENT_RECORDING_MASK_TEXT_SELECTOR=".pii",
    CONSENT_RECORDING_BLOCK_SELECTOR="[data-private]",
    CONSENT_RECORDING_SAMPLE_RATE=0.25,
    CONSENT_RECORDING_MASK_ALL_INPUTS=False,
)
def test_recording_masks_and_sample_rate_come_from_settings(visitor):
    body = visitor.config().json()

    assert body["options"]["session_recording"] == {
        "maskAllInputs": False,
        "sampleRate": 0.25,
        "maskTextSelector": ".pii",
        "blockSelector": "[data-private]",
    }
    assert_matches_schema(body, "ClientConfig")


@override_settings(
    CONSENT_PROXY_PREFIX="/collect",
    POSTHOG_APP_HOST="https://eu.posthog.com",
    POSTHOG_PERSON_PROFILES="always",
)
def test_hosts_and_person_profiles_come_from_settings(visitor):
    body = visitor.config().json()

    assert body["api_host"] == body["options"]["api_host"] == "/collect"
    assert body["ui_host"] == body["options"]["ui_host"] == "https://eu.posthog.com"
    assert body["options"]["person_profiles"] == "always"


def test_config_is_private_and_varies_on_cookie(visitor):
    response = visitor.config()

    assert response["Cache-Control"] == "private, no-store"
    assert has_vary_header(response, "Cookie")


def test_a_returning_visitors_config_is_private_too(visitor):
    visitor.decide(GRANT_ALL)

    response = visitor.config()

    assert "consent_vid" not in response.cookies
    assert response["Cache-Control"] == "private, no-store"
    assert has_vary_header(response, "Cookie")


def test_config_sets_the_csrf_and_visitor_cookies(visitor):
    response = visitor.config()

    assert response.cookies["csrftoken"].value
    assert response.cookies["csrftoken"]["samesite"] == "Lax"
    assert response.cookies["consent_vid"]["httponly"]
    assert response.cookies["consent_vid"]["samesite"] == "Lax"


def test_the_csrf_token_from_config_lets_the_banner_post(visitor):
    visitor.config()

    response = visitor.decide(GRANT_ALL, source="banner")

    assert response.status_code == 201


def test_config_records_nothing_for_a_visitor_without_gpc(visitor):
    visitor.config()

    assert ConsentRecord.objects.count() == 0


def test_config_for_a_returning_visitor_makes_at_most_two_queries(
    visitor, django_assert_max_num_queries
):
    visitor.decide(GRANT_ALL)
    visitor.config()  # warm-up: loads the per-process policy cache

    with django_assert_max_num_queries(2):
        response = visitor.config()

    assert response.json()["options"]["opt_out_capturing_by_default"] is False


def test_config_for_a_new_visitor_makes_at_most_two_queries(
    make_visitor, django_assert_max_num_queries
):
    make_visitor().config()  # warm-up
    visitor = make_visitor()

    with django_assert_max_num_queries(2):
        response = visitor.config()

    assert response.status_code == 200


def test_config_only_answers_get(visitor):
    response = visitor.post(CONFIG_URL, {})

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_the_config_call_links_a_logged_in_visitor(visitor, django_user_model):
    from consent_service.ledger.models import Subject

    visitor.decide({"analytics": True, "session_replay": False})
    user = django_user_model.objects.create_user("config-login", password="pw")
    visitor.log_in(user)

    visitor.config()

    assert Subject.objects.get().user_id == user.pk


@override_settings(CSRF_USE_SESSIONS=True)
def test_a_site_without_a_csrf_cookie_gets_the_token_in_the_config():
    """Host projects may keep the CSRF token in the session (or the cookie HttpOnly): the
    page's script then writes with the token the config carried."""
    browser = Client(enforce_csrf_checks=True)
    token = browser.get(CONFIG_URL).json()["csrf_token"]
    assert "csrftoken" not in browser.cookies

    body = json.dumps({"purposes": GRANT_ALL, "policy_version": "1"})
    refused = browser.post(CONSENT_URL, body, content_type="application/json")
    granted = browser.post(
        CONSENT_URL, body, content_type="application/json", headers={"X-CSRFToken": token}
    )

    assert (refused.status_code, granted.status_code) == (403, 201)
