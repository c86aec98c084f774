"""Server-side events through the real posthog-python SDK, into the sandbox PostHog."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.test import override_settings
from posthog import request as posthog_request
from posthog.consumer import Consumer

from consent_service import analytics
from consent_service.ledger.models import SubjectIdentifier
from tests.conftest import Visitor, anonymous_id, identified_id_of

pytestmark = pytest.mark.django_db

GRANT = {"analytics": True, "session_replay": False}
REFUSE = {"analytics": False, "session_replay": False}
BROWSER = anonymous_id("browser")  # posthog-js's anonymous id
DOWN = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused


@pytest.fixture(autouse=True)
def sync_analytics() -> Iterator[None]:
    """Send in the test's thread; afterwards leave no SDK thread or open socket behind."""
    analytics.configure(sync_mode=True)
    yield
    analytics.shutdown()
    analytics.configure(sync_mode=False)
    posthog_request._session.close()  # the SDK's module-level keep-alive session


@pytest.fixture
def ada(django_user_model: Any) -> User:
    user: User = django_user_model.objects.create_user("ada")
    return user


def logged_in(make_visitor: Any, user: User) -> Visitor:
    visitor: Visitor = make_visitor()
    visitor.log_in(user)
    return visitor


def decide(visitor: Visitor, purposes: dict[str, bool], **extra: Any) -> None:
    assert visitor.decide(purposes, **extra).status_code == 201


def received(sandbox: Any) -> list[tuple[str | None, str]]:
    return [(e.distinct_id, e.event["event"]) for e in sandbox.store.events]


def bound_ids(user: User) -> dict[str, bool]:
    rows = SubjectIdentifier.objects.filter(
        subject__user=user, kind=SubjectIdentifier.Kind.DISTINCT_ID
    ).values_list("value", "refused_at")
    return {value: refused_at is not None for value, refused_at in rows}


def test_a_consenting_users_event_arrives_under_their_identified_id(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), GRANT)

    assert analytics.capture_event(ada, "order_paid", {"plan": "pro"}) is True

    [event] = sandbox.store.events
    # The id the config gives posthog-js, so browser and server events are one person.
    assert (event.distinct_id, event.event["event"]) == (identified_id_of(ada), "order_paid")
    assert event.event["properties"]["plan"] == "pro"
    assert event.event["properties"]["$geoip_disable"] is True
    assert event.route == "/batch/"  # straight to PostHog's capture, not through /ph
    # Bound to the user's subject, so an erasure of this user deletes what was sent under it.
    assert bound_ids(ada) == {identified_id_of(ada): False}


def test_the_identified_id_is_used_not_the_browsers_anonymous_one(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), GRANT, distinct_id=BROWSER)

    assert analytics.capture_event(ada, "order_paid") is True

    assert received(sandbox) == [(identified_id_of(ada), "order_paid")]
    assert bound_ids(ada) == {BROWSER: False, identified_id_of(ada): False}


@override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=True)
def test_the_users_pk_is_never_used_even_when_bound(sandbox, make_visitor, ada):
    # With the trust setting a browser may claim any id: a stranger took str(ada.pk).
    decide(make_visitor(), GRANT, distinct_id=str(ada.pk))
    decide(logged_in(make_visitor, ada), GRANT)

    assert analytics.capture_event(ada, "order_paid") is True

    assert received(sandbox) == [(identified_id_of(ada), "order_paid")]


def test_nothing_is_sent_for_a_user_who_refused(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), REFUSE, distinct_id=BROWSER)

    assert analytics.capture_event(ada, "order_paid") is False
    assert analytics.identify_user(ada) is False

    assert sandbox.store.requests == []


def test_nothing_is_sent_after_a_withdrawal(sandbox, make_visitor, ada):
    visitor = logged_in(make_visitor, ada)
    decide(visitor, GRANT)
    before = identified_id_of(ada)
    assert analytics.capture_event(ada, "before") is True

    assert visitor.withdraw().status_code == 201
    assert analytics.capture_event(ada, "after") is False
    assert analytics.identify_user(ada, {"plan": "pro"}) is False

    assert received(sandbox) == [(before, "before")]


def test_a_new_grant_after_a_withdrawal_sends_under_a_fresh_identified_id(
    sandbox, make_visitor, ada
):
    visitor = logged_in(make_visitor, ada)
    decide(visitor, GRANT, distinct_id=BROWSER)
    old = identified_id_of(ada)
    assert visitor.withdraw().status_code == 201
    decide(visitor, GRANT)  # consent again: the old ids stay refused

    assert analytics.capture_event(ada, "order_paid") is True

    new = identified_id_of(ada)
    assert new != old
    assert received(sandbox) == [(new, "order_paid")]
    assert bound_ids(ada) == {BROWSER: True, old: True, new: False}


def test_without_an_identified_id_nothing_is_sent(sandbox, make_visitor, ada, caplog):
    decide(logged_in(make_visitor, ada), GRANT)
    SubjectIdentifier.objects.filter(value=identified_id_of(ada)).delete()  # as if never minted

    with caplog.at_level(logging.WARNING, "consent_service.analytics"):
        assert analytics.capture_event(ada, "order_paid") is False

    assert "has no identified distinct_id" in caplog.text
    assert sandbox.store.requests == []


def test_nothing_is_sent_without_a_user_or_a_subject(sandbox, ada):
    assert analytics.capture_event(None, "order_paid") is False
    assert analytics.capture_event(AnonymousUser(), "order_paid") is False
    assert analytics.identify_user(AnonymousUser()) is False
    assert analytics.capture_event(ada, "order_paid") is False  # never decided: no subject

    assert sandbox.store.requests == []


def test_nothing_is_sent_with_analytics_off(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), GRANT)

    with override_settings(POSTHOG_API_KEY=""):
        assert analytics.capture_event(ada, "order_paid") is False
        assert analytics.identify_user(ada) is False

    assert sandbox.store.requests == []


def test_posthog_down_returns_false_and_the_next_client_recovers(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), GRANT)

    with override_settings(POSTHOG_HOST=DOWN):
        assert analytics.capture_event(ada, "lost") is False
        assert analytics.identify_user(ada) is False

    assert analytics.capture_event(ada, "kept") is True  # rebuilt for the sandbox again
    assert received(sandbox) == [(identified_id_of(ada), "kept")]


def test_a_failing_consent_lookup_returns_false_and_leaves_the_transaction_usable(
    sandbox, make_visitor, ada, caplog
):
    decide(logged_in(make_visitor, ada), GRANT)

    def broken(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "ledger_consentstate" in sql:
            return execute("SELECT missing FROM analytics_no_such_table", (), many, context)
        return execute(sql, params, many, context)

    with (
        caplog.at_level(logging.ERROR, "consent_service.analytics"),
        connection.execute_wrapper(broken),
    ):
        assert analytics.capture_event(ada, "order_paid") is False

    assert "reading the consent of user" in caplog.text
    assert User.objects.filter(pk=ada.pk).exists()  # PostgreSQL: only the savepoint rolled back
    assert sandbox.store.requests == []


def test_an_sdk_that_fails_to_start_returns_false(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), GRANT)

    with mock.patch("consent_service.analytics.Posthog", side_effect=RuntimeError("boom")):
        assert analytics.capture_event(ada, "order_paid") is False

    assert sandbox.store.requests == []


def test_identify_user_sets_minimal_person_properties(sandbox, make_visitor, ada):
    decide(logged_in(make_visitor, ada), GRANT)

    assert analytics.identify_user(ada) is True
    assert analytics.identify_user(ada, {"plan": "pro"}) is True

    first, second = sandbox.store.events
    assert (first.distinct_id, first.event["event"]) == (identified_id_of(ada), "$set")
    assert first.event["$set"] == {"is_staff": False}  # nothing personal unless passed
    assert second.event["$set"] == {"is_staff": False, "plan": "pro"}
    assert "ada" not in str(first.event)


def test_the_default_mode_sends_from_the_sdks_thread_and_shutdown_stops_it(
    sandbox, make_visitor, ada
):
    decide(logged_in(make_visitor, ada), GRANT)
    analytics.configure(sync_mode=False)

    assert analytics.capture_event(ada, "queued") is True
    assert len(consumer_threads()) == 1
    analytics.shutdown()

    assert received(sandbox) == [(identified_id_of(ada), "queued")]
    assert consumer_threads() == []


def consumer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, Consumer) and t.is_alive()]
