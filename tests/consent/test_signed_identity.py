"""POST /api/v1/identity/: a host app's backend vouches for its user with a signed token, and
the browser is linked to that user's subject as a Django login links it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from consent_service.consent.signed_identity import sign_identity
from consent_service.erasure.models import ErasureRequest
from consent_service.ledger.identified_ids import identified_id_of_subject
from consent_service.ledger.models import ConsentRecord, Subject, SubjectIdentifier
from consent_service.ledger.pseudonymise import subject_pseudonymise
from tests.api.contract import assert_matches_schema
from tests.conftest import (
    GRANT_ALL,
    REFUSE_ALL,
    TOKEN,
    Visitor,
    anonymous_id,
    delivered,
    logged_in,
)

pytestmark = pytest.mark.django_db

IDENTITY_URL = "/api/v1/identity/"
SECRET = "s3cret-shared-with-the-host-app"
PREVIOUS = "the-secret-before-rotation"
SITE = "shop.example"
START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def identity_on(settings: Any) -> None:
    settings.CONSENT_IDENTITY_SECRET = SECRET
    settings.CONSENT_IDENTITY_SECRET_PREVIOUS = PREVIOUS
    settings.CONSENT_IDENTITY_SITE = SITE
    settings.CONSENT_IDENTITY_MAX_AGE_SECONDS = 300


def identify(browser: Visitor, user_id: str, signature: str | None = None, **kw: Any) -> Any:
    signature = sign_identity(user_id) if signature is None else signature
    return browser.post(IDENTITY_URL, {"user_id": user_id, "signature": signature}, **kw)


def external_subject() -> Subject:
    return Subject.objects.get(identifiers__kind="external_user")


def error(response: Any) -> tuple[int, str]:
    assert_matches_schema(response.json(), "Error")
    return response.status_code, response.json()["code"]


def test_a_valid_signature_links_the_visitors_subject_to_the_user(visitor):
    visitor.decide(GRANT_ALL, distinct_id=anonymous_id("laptop"))

    response = identify(visitor, "user-42")

    assert response.status_code == 204
    subject = Subject.objects.get()
    assert subject == external_subject()
    minted = identified_id_of_subject(subject_id=subject.pk)
    assert minted is not None
    assert visitor.config().json()["identified_id"] == minted


def test_only_a_digest_of_the_user_id_is_kept(visitor):
    identify(visitor, "ada@example.com")

    [stored] = SubjectIdentifier.objects.filter(kind="external_user")
    assert "ada" not in stored.value
    assert stored.value == hashlib.sha256(f"{SITE}\nada@example.com".encode()).hexdigest()


def test_a_forged_signature_is_refused_and_links_nothing(visitor):
    forged = sign_identity("user-42", secret="guessed-secret")

    response = identify(visitor, "user-42", forged)

    assert error(response) == (403, "identity_signature_invalid")
    assert not SubjectIdentifier.objects.filter(kind="external_user").exists()


def test_a_signature_for_another_user_is_refused(visitor):
    response = identify(visitor, "user-43", sign_identity("user-42"))

    assert error(response) == (403, "identity_signature_invalid")


def test_an_expired_signature_is_refused(visitor):
    old = sign_identity("user-42", issued_at=int(time.time()) - 301)

    assert error(identify(visitor, "user-42", old)) == (403, "identity_expired")


def test_a_signature_issued_in_the_future_is_refused_beyond_a_small_skew(visitor):
    now = int(time.time())
    ahead = sign_identity("user-42", issued_at=now + 120)
    skewed = sign_identity("user-42", issued_at=now + 10)

    assert error(identify(visitor, "user-42", ahead)) == (403, "identity_issued_in_future")
    assert identify(visitor, "user-42", skewed).status_code == 204


def test_the_previous_secret_is_accepted_during_rotation(visitor, settings):
    signed = sign_identity("user-42", secret=PREVIOUS)

    assert identify(visitor, "user-42", signed).status_code == 204
    settings.CONSENT_IDENTITY_SECRET_PREVIOUS = ""
    again = sign_identity("user-42", secret=PREVIOUS)
    assert error(identify(Visitor(), "user-42", again)) == (403, "identity_signature_invalid")


def test_a_signature_for_another_site_is_refused(visitor):
    elsewhere = sign_identity("user-42", site="blog.example")

    assert error(identify(visitor, "user-42", elsewhere)) == (403, "identity_signature_invalid")


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "user-42", "signature": "v2.1.abc"},
        {"user_id": "user-42", "signature": "v1.notatime." + "A" * 43},
        {"user_id": "user 42", "signature": "v1.1." + "A" * 43},
        {"user_id": "line\nbreak", "signature": "v1.1." + "A" * 43},
        {"user_id": "x" * 129, "signature": "v1.1." + "A" * 43},
        {"user_id": "user-42"},
        {"user_id": ["user-42"], "signature": "v1.1." + "A" * 43},
    ],
    ids=["version", "issued_at", "space", "newline", "too long", "missing", "list"],
)
def test_a_malformed_body_is_a_400_in_the_envelope(visitor, body):
    response = visitor.post(IDENTITY_URL, body)

    assert response.status_code == 400
    assert_matches_schema(response.json(), "Error")


def test_the_token_format_is_plain_hmac_sha256_as_documented(visitor):
    """What a Node or Python backend computes from the README, without this package."""
    issued_at = int(time.time())
    message = f"v1\n{SITE}\nuser-42\n{issued_at}".encode()
    mac = hmac.new(SECRET.encode(), message, hashlib.sha256).digest()
    token = f"v1.{issued_at}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    assert token == sign_identity("user-42", issued_at=issued_at)
    assert identify(visitor, "user-42", token).status_code == 204


def test_csrf_is_required(visitor):
    response = identify(visitor, "user-42", headers={"X-CSRFToken": "wrong"})

    assert error(response) == (403, "csrf_failed")
    assert not SubjectIdentifier.objects.filter(kind="external_user").exists()


def test_without_a_secret_the_endpoint_does_not_exist(visitor, settings):
    signed = sign_identity("user-42")
    settings.CONSENT_IDENTITY_SECRET = ""

    assert error(identify(visitor, "user-42", signed)) == (404, "identity_disabled")


def test_a_logged_in_django_user_cannot_also_sign_in_as_a_host_app_user():
    browser = logged_in(User.objects.create_user("ada", password="irrelevant-password-42"))

    assert error(identify(browser, "user-42")) == (409, "identity_user_logged_in")


def test_the_same_user_on_two_devices_ends_on_one_subject(make_visitor):
    laptop, phone = make_visitor(), make_visitor()
    identify(laptop, "user-42")
    laptop.decide(GRANT_ALL)
    phone.decide(GRANT_ALL, distinct_id=anonymous_id("phone"))

    identify(phone, "user-42")

    subject = external_subject()
    assert subject.identifiers.filter(kind="visitor").count() == 2
    assert subject.identifiers.filter(value=anonymous_id("phone")).exists()
    assert Subject.objects.exclude(pk=subject.pk).get().merged_into == subject
    assert phone.consent().json() == laptop.consent().json()
    assert phone.config().json()["identified_id"] == laptop.config().json()["identified_id"]


def test_a_newer_refusal_on_another_device_revokes_like_a_login(make_visitor, time_machine):
    time_machine.move_to(START)
    laptop = make_visitor()
    identify(laptop, "user-42", sign_identity("user-42", issued_at=int(START.timestamp())))
    laptop.decide(GRANT_ALL, distinct_id=anonymous_id("laptop"))
    minted = identified_id_of_subject(subject_id=external_subject().pk)
    time_machine.move_to(START + timedelta(days=1))
    phone = make_visitor()
    phone.decide(REFUSE_ALL)

    later = int((START + timedelta(days=1)).timestamp())
    assert identify(phone, "user-42", sign_identity("user-42", issued_at=later)).status_code == 204

    subject = external_subject()
    carried = ConsentRecord.objects.get(source=ConsentRecord.Source.LOGIN)
    assert carried.subject == subject and carried.choices == REFUSE_ALL
    [request] = ErasureRequest.objects.all()
    assert request.subject == subject and request.reason == "refusal"
    refused = SubjectIdentifier.objects.filter(subject=subject, refused_at__isnull=False)
    assert {anonymous_id("laptop"), minted} <= set(refused.values_list("value", flat=True))
    assert laptop.consent().json()["purposes"]["analytics"]["granted"] is False


def test_another_user_on_the_same_browser_does_not_take_the_first_users_subject(visitor):
    identify(visitor, "user-42")
    visitor.decide(GRANT_ALL)

    identify(visitor, "user-43")

    assert Subject.objects.filter(identifiers__kind="external_user").count() == 2
    assert visitor.consent().json()["needs_prompt"] is True
    assert ConsentRecord.objects.filter(subject__identifiers__kind="visitor").count() == 0


def test_forgetting_the_identity_starts_a_new_visitor_as_a_logout_does(visitor):
    identify(visitor, "user-42")
    visitor.decide(GRANT_ALL)
    assert visitor.config().json()["identified_id"] is not None
    before = visitor.visitor_id_cookie

    response = visitor.client.delete(IDENTITY_URL, headers={"X-CSRFToken": visitor.csrf_token})

    assert response.status_code == 204
    after = visitor.config().json()
    assert visitor.visitor_id_cookie != before
    assert after["identified_id"] is None
    assert after["consent"]["needs_prompt"] is True


def test_forgetting_needs_csrf(visitor):
    identify(visitor, "user-42")

    assert error(visitor.client.delete(IDENTITY_URL)) == (403, "csrf_failed")


def test_erasure_drops_the_digest_of_the_user_id(visitor):
    identify(visitor, "user-42")

    subject_pseudonymise(subject_id=external_subject().pk)

    assert not SubjectIdentifier.objects.filter(kind="external_user").exists()


def test_without_the_session_the_visitor_gets_no_identified_id(visitor):
    """Another browser session on the same visitor cookie (a shared browser after the host
    app's logout) is not told the user's id."""
    identify(visitor, "user-42")
    visitor.decide(GRANT_ALL)

    visitor.client.cookies.pop("sessionid")

    assert visitor.config().json()["identified_id"] is None


def proxied_identify(browser: Visitor, distinct_id: str, anon_id: str) -> Any:
    event = {
        "event": "$identify",
        "properties": {"distinct_id": distinct_id, "$anon_distinct_id": anon_id},
    }
    body = json.dumps({"api_key": TOKEN, "batch": [event]})
    return browser.client.post("/ph/e/", body, content_type="text/plain")


def test_after_the_link_the_minted_ids_identify_passes_the_proxy_gate(sandbox, make_visitor):
    """Gate rule 2: every id an event names must be the caller's. The minted id is the
    linked browser's own; to any other browser it is another subject's."""
    browser, stranger = make_visitor(), make_visitor()
    browser.decide(GRANT_ALL, distinct_id=anonymous_id("laptop"))
    stranger.decide(GRANT_ALL, distinct_id=anonymous_id("stranger"))
    identify(browser, "user-42")
    minted = browser.config().json()["identified_id"]
    assert minted is not None

    proxied_identify(stranger, minted, anonymous_id("stranger"))
    proxied_identify(browser, minted, anonymous_id("laptop"))

    [forwarded] = delivered(sandbox)
    assert forwarded.distinct_id == minted
    assert forwarded.event["properties"]["$anon_distinct_id"] == anonymous_id("laptop")
