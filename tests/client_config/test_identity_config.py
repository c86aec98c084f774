"""What the config tells posthog-js about identity: the minted identified id (bootstrap and
`identified_id`), when to reset, and whether its cookie may span subdomains."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from tests.api.contract import assert_matches_schema
from tests.conftest import GRANT_ALL, REFUSE_ALL, Visitor, anonymous_id, identified_id_of, logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada", password="irrelevant-password-42")


def identity(body: dict[str, Any]) -> tuple[Any, Any]:
    return body["identified_id"], body["options"]["bootstrap"]


def test_a_logged_in_user_who_granted_gets_their_identified_id(ada):
    browser = logged_in(ada)
    browser.decide(GRANT_ALL)

    body = browser.config().json()

    minted = identified_id_of(ada)
    assert identity(body) == (minted, {"distinctID": minted, "isIdentifiedID": True})
    assert_matches_schema(body, "ClientConfig")
    assert_matches_schema(body["options"], "PosthogOptions")


def test_an_anonymous_visitor_gets_none(visitor):
    visitor.decide(GRANT_ALL)

    assert identity(visitor.config().json()) == (None, {})


def test_a_user_without_an_analytics_grant_gets_none(ada):
    browser = logged_in(ada)
    browser.decide({"analytics": False, "session_replay": True})

    assert identity(browser.config().json()) == (None, {})


def test_a_login_after_granting_hands_out_the_id_on_the_next_config(ada):
    browser = Visitor()
    browser.decide(GRANT_ALL, distinct_id=anonymous_id("laptop"))
    browser.log_in(ada)

    body = browser.config().json()

    assert body["identified_id"] == identified_id_of(ada)


def test_the_next_user_of_a_shared_browser_never_gets_the_first_ones_id(ada):
    grace = User.objects.create_user("grace")
    browser = logged_in(ada)
    browser.decide(GRANT_ALL)
    browser.log_in(grace)

    before = browser.config().json()
    browser.decide(GRANT_ALL)
    after = browser.config().json()

    assert before["identified_id"] is None
    assert after["identified_id"] == identified_id_of(grace) != identified_id_of(ada)


def test_the_id_is_rotated_after_a_withdrawal(ada):
    browser = logged_in(ada)
    browser.decide(GRANT_ALL)
    first = browser.config().json()["identified_id"]
    browser.withdraw()

    withdrawn = browser.config().json()
    browser.decide(GRANT_ALL)
    regranted = browser.config().json()

    assert withdrawn["identified_id"] is None
    assert withdrawn["reset_identity"] is True
    assert regranted["identified_id"] not in {None, first}


def test_a_fresh_id_alone_does_not_end_the_reset(ada):
    # Minting the next id must not hide that posthog-js still holds the refused ones.
    browser = logged_in(ada)
    browser.decide(GRANT_ALL, distinct_id=anonymous_id("old-device"))
    browser.withdraw()
    browser.decide(REFUSE_ALL)  # a write: mints the next generation

    assert browser.config().json()["reset_identity"] is True

    browser.decide(GRANT_ALL, distinct_id=anonymous_id("new-device"))
    assert browser.config().json()["reset_identity"] is False


def test_the_identity_adds_no_query_to_a_logged_in_users_config(ada, django_assert_max_num_queries):
    browser = logged_in(ada)
    browser.decide(GRANT_ALL)
    browser.config()  # warm-up: the policy and consent caches

    with django_assert_max_num_queries(2):  # the session and its user, nothing of ours
        body = browser.config().json()

    assert body["identified_id"] == identified_id_of(ada)


def test_the_posthog_cookie_stays_on_this_host_like_the_visitor_cookie(visitor):
    response = visitor.config()

    assert response.json()["options"]["cross_subdomain_cookie"] is False
    assert response.cookies["consent_vid"]["domain"] == ""


@override_settings(CONSENT_VISITOR_COOKIE_DOMAIN=".example.test")
def test_a_visitor_cookie_domain_lets_posthog_share_across_subdomains(visitor):
    response = visitor.config()

    assert response.json()["options"]["cross_subdomain_cookie"] is True
    assert response.cookies["consent_vid"]["domain"] == ".example.test"
