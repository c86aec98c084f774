from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from consent_service.erasure.models import ErasureRequest
from consent_service.ledger.models import ConsentRecord, Subject, SubjectIdentifier
from tests.conftest import GRANT_ALL, REFUSE_ALL, Visitor, _without_login_receivers, anonymous_id

pytestmark = pytest.mark.django_db

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
DEVICE = anonymous_id("device-123")


@pytest.fixture
def user() -> User:
    return User.objects.create_user("ada", password="irrelevant-password-42")


def granted(body: dict[str, Any]) -> dict[str, bool]:
    return {key: purpose["granted"] for key, purpose in body["purposes"].items()}


def row_counts() -> tuple[int, int, int]:
    models = (Subject, SubjectIdentifier, ConsentRecord)
    return tuple(model.objects.count() for model in models)  # type: ignore[return-value]


def user_subject(user: User) -> Subject:
    return Subject.objects.get(user=user)


def test_login_links_the_visitors_subject_to_the_user(visitor, user):
    visitor.decide(GRANT_ALL)
    anonymous = Subject.objects.get()
    assert anonymous.user is None
    visitor.log_in(user)

    body = visitor.consent().json()

    anonymous.refresh_from_db()
    assert anonymous.user == user
    assert granted(body) == {"analytics": True, "session_replay": True}
    assert Subject.objects.count() == 1
    assert ConsentRecord.objects.count() == 1  # linking alone records nothing


def test_a_logged_in_users_decision_is_stored_on_their_subject(visitor, user):
    visitor.log_in(user)

    response = visitor.decide(GRANT_ALL)

    assert response.status_code == 201
    assert ConsentRecord.objects.get().subject == user_subject(user)


def test_the_users_consent_follows_them_to_another_browser(make_visitor, user):
    laptop, phone = make_visitor(), make_visitor()
    laptop.log_in(user)
    laptop.decide(GRANT_ALL)
    phone.log_in(user)

    body = phone.consent().json()

    assert granted(body) == {"analytics": True, "session_replay": True}
    assert SubjectIdentifier.objects.filter(subject=user_subject(user), kind="visitor").count() == 2


def test_a_newer_anonymous_decision_wins_over_the_users_older_one(make_visitor, user, time_machine):
    time_machine.move_to(START)
    laptop = make_visitor()
    laptop.log_in(user)
    laptop.decide(REFUSE_ALL)
    time_machine.move_to(START + timedelta(days=3))
    phone = make_visitor()
    phone.decide(GRANT_ALL)
    time_machine.move_to(START + timedelta(days=4))
    phone.log_in(user)

    body = phone.consent().json()

    assert granted(body) == {"analytics": True, "session_replay": True}
    carried = ConsentRecord.objects.get(source=ConsentRecord.Source.LOGIN)
    assert carried.subject == user_subject(user)
    assert carried.choices == GRANT_ALL
    # The carried decision keeps its original time, so carrying never extends its lifetime.
    assert body["purposes"]["analytics"]["decided_at"].startswith("2026-05-07T08:00")
    assert laptop.consent().json()["purposes"]["analytics"]["granted"] is True


def test_both_histories_are_kept_after_linking(make_visitor, user, time_machine):
    time_machine.move_to(START)
    laptop = make_visitor()
    laptop.log_in(user)
    laptop.decide(REFUSE_ALL)
    time_machine.move_to(START + timedelta(hours=1))
    phone = make_visitor()
    phone.decide(GRANT_ALL)
    phone.log_in(user)
    phone.consent()

    history = phone.history().json()["results"]

    assert [(r["source"], r["choices"]) for r in history] == [
        ("login", GRANT_ALL),
        ("api", GRANT_ALL),
        ("api", REFUSE_ALL),
    ]
    assert laptop.history().json()["results"] == history
    assert ConsentRecord.objects.filter(subject__user__isnull=True).count() == 1


def test_an_older_anonymous_decision_does_not_override_the_users_newer_one(
    make_visitor, user, time_machine
):
    time_machine.move_to(START)
    phone = make_visitor()
    phone.decide(GRANT_ALL)
    time_machine.move_to(START + timedelta(days=1))
    laptop = make_visitor()
    laptop.log_in(user)
    laptop.decide(REFUSE_ALL)
    time_machine.move_to(START + timedelta(days=2))
    phone.log_in(user)

    body = phone.consent().json()

    assert granted(body) == {"analytics": False, "session_replay": False}
    assert body["purposes"]["analytics"]["choice"] is False
    assert not ConsentRecord.objects.filter(source="login").exists()
    assert len(phone.history().json()["results"]) == 2


def test_linking_happens_once(make_visitor, user):
    phone = make_visitor()
    phone.decide(GRANT_ALL)
    phone.log_in(user)

    phone.consent()
    phone.config()
    phone.consent()

    assert Subject.objects.filter(user=user).count() == 1
    assert ConsentRecord.objects.count() == 1


def test_a_gpc_refusal_is_not_carried_over_a_users_explicit_decision(
    make_visitor, user, time_machine
):
    time_machine.move_to(START)
    laptop = make_visitor()
    laptop.log_in(user)
    laptop.decide(GRANT_ALL)
    time_machine.move_to(START + timedelta(days=1))
    phone = Visitor(**{"Sec-GPC": "1"})
    phone.consent()  # records a GPC refusal for the anonymous phone
    phone.log_in(user)

    body = phone.consent().json()

    assert granted(body) == {"analytics": True, "session_replay": True}
    assert not ConsentRecord.objects.filter(source="login").exists()


def test_a_distinct_id_bound_anonymously_moves_to_the_user_at_login(visitor, user):
    owner = User.objects.create_user("grace", password="irrelevant-password-42")
    other = Visitor()
    other.log_in(owner)
    other.decide(REFUSE_ALL)
    visitor.decide(GRANT_ALL, distinct_id=DEVICE)
    visitor.log_in(user)
    visitor.consent()

    bound = SubjectIdentifier.objects.get(kind="distinct_id", value=DEVICE)

    assert bound.subject == user_subject(user)


def test_a_second_user_on_the_same_browser_does_not_inherit_the_first_users_consent(visitor, user):
    second = User.objects.create_user("grace", password="irrelevant-password-42")
    visitor.decide(GRANT_ALL)
    visitor.log_in(user)
    assert granted(visitor.consent().json()) == {"analytics": True, "session_replay": True}
    visitor.client.logout()
    visitor.log_in(second)

    body = visitor.consent().json()

    assert body["needs_prompt"] is True
    assert granted(body) == {"analytics": False, "session_replay": False}
    assert visitor.config().json()["options"]["opt_out_capturing_by_default"] is True
    assert visitor.history().json()["results"] == []
    assert Subject.objects.get(user=user).records.count() == 1


def test_the_second_users_decision_does_not_touch_the_first_users(visitor, user):
    second = User.objects.create_user("grace", password="irrelevant-password-42")
    visitor.log_in(user)
    visitor.decide(GRANT_ALL)
    visitor.client.logout()
    visitor.log_in(second)

    visitor.decide(REFUSE_ALL)

    first_state = user_subject(user).state.purposes
    second_state = user_subject(second).state.purposes
    assert {key: entry["granted"] for key, entry in first_state.items()} == GRANT_ALL
    assert {key: entry["granted"] for key, entry in second_state.items()} == REFUSE_ALL


def test_the_first_user_logging_back_in_gets_their_consent_back(visitor, user):
    second = User.objects.create_user("grace", password="irrelevant-password-42")
    visitor.log_in(user)
    visitor.decide(GRANT_ALL)
    visitor.client.logout()
    visitor.log_in(second)
    visitor.consent()
    visitor.client.logout()
    visitor.log_in(user)

    body = visitor.consent().json()

    assert granted(body) == {"analytics": True, "session_replay": True}


def test_logout_starts_a_new_visitor_without_the_users_consent(make_visitor, django_user_model):
    user = django_user_model.objects.create_user("shared", password="pw", is_staff=True)
    browser = make_visitor()
    browser.log_in(user)
    assert browser.decide({"analytics": True, "session_replay": True}).status_code == 201
    before = browser.visitor_id_cookie

    # Log out through a real view: the test client's own logout() drops every cookie.
    logout = browser.client.post("/admin/logout/", headers={"X-CSRFToken": browser.csrf_token})
    assert logout.status_code == 200
    after_logout = browser.consent().json()

    assert browser.visitor_id_cookie != before
    assert after_logout["purposes"]["analytics"]["granted"] is False
    assert after_logout["needs_prompt"] is True


def test_linking_happens_at_login_not_on_a_later_get(visitor, user):
    visitor.decide(GRANT_ALL)
    anonymous = Subject.objects.get()

    visitor.log_in(user)

    anonymous.refresh_from_db()
    assert anonymous.user == user  # before any GET


def test_gets_after_a_login_that_did_not_link_write_nothing(visitor, user):
    """A session from before linking existed: the GETs read, and wait for a write."""
    other = Visitor()
    other.log_in(user)
    other.decide(REFUSE_ALL)  # the user has a subject of their own
    visitor.decide(GRANT_ALL)  # an anonymous one on this browser
    with _without_login_receivers():
        visitor.client.force_login(user)
    rows = (
        Subject.objects.count(),
        SubjectIdentifier.objects.count(),
        ConsentRecord.objects.count(),
    )

    body = visitor.consent().json()
    visitor.config()
    visitor.history()

    after = (
        Subject.objects.count(),
        SubjectIdentifier.objects.count(),
        ConsentRecord.objects.count(),
    )
    assert after == rows
    assert ErasureRequest.objects.count() == 0
    assert granted(body) == {"analytics": False, "session_replay": False}  # the user's own


def test_a_browser_without_a_visitor_cookie_gets_one_at_login(user):
    laptop = Visitor()
    laptop.log_in(user)
    laptop.decide(GRANT_ALL)
    phone = Visitor()
    assert "consent_vid" not in phone.client.cookies

    phone.log_in(user)

    assert phone.visitor_id_cookie is not None
    assert SubjectIdentifier.objects.filter(kind="visitor", subject=user_subject(user)).count() == 2
    assert granted(phone.consent().json()) == {"analytics": True, "session_replay": True}
