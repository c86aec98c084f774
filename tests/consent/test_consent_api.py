from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.test import override_settings

from consent_service.core.visitor import COOKIE_MAX_AGE
from consent_service.ledger.models import ConsentRecord, SubjectIdentifier
from tests.api.contract import assert_error, assert_matches_schema
from tests.conftest import CONSENT_URL, GRANT_ALL, HISTORY_URL, WITHDRAW_URL, anonymous_id

pytestmark = pytest.mark.django_db

DEVICE = anonymous_id("device")  # what posthog-js makes up: a UUIDv7


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


# --- GET /consent/ --------------------------------------------------------------------


def test_get_lists_every_active_purpose_with_the_current_policy_version(visitor):
    response = visitor.consent()

    body = response.json()
    assert_matches_schema(body, "ConsentState")
    assert set(body["purposes"]) == {"analytics", "session_replay"}
    assert body["current_policy_version"] == settings.CONSENT_POLICY_VERSION
    assert body["policy_version"] is None
    assert body["decided_at"] is None
    assert body["expires_at"] is None
    assert body["gpc"] is False
    assert response["Cache-Control"] == "private, no-store"


def test_get_after_a_decision_returns_it_without_a_new_cookie(visitor):
    visitor.decide({"analytics": True, "session_replay": False})

    response = visitor.consent()

    assert response.status_code == 200
    body = response.json()
    assert_matches_schema(body, "ConsentState")
    assert body["purposes"]["analytics"]["granted"] is True
    assert body["purposes"]["analytics"]["choice"] is True
    assert body["purposes"]["session_replay"]["choice"] is False
    assert body["policy_version"] == "1"
    assert body["needs_prompt"] is False
    assert "consent_vid" not in response.cookies


def test_a_visit_without_a_decision_stores_nothing(visitor):
    visitor.consent()
    visitor.consent()

    assert ConsentRecord.objects.count() == 0
    assert SubjectIdentifier.objects.count() == 0


@override_settings(CONSENT_VISITOR_COOKIE_SECURE=True)
def test_visitor_cookie_is_secure_when_settings_say_so(visitor):
    response = visitor.consent()

    assert response.cookies["consent_vid"]["secure"] is True


@override_settings(CONSENT_VISITOR_COOKIE_SECURE=False)
def test_visitor_cookie_is_not_secure_in_plain_http_development(visitor):
    response = visitor.consent()

    assert not response.cookies["consent_vid"]["secure"]
    assert response.cookies["consent_vid"]["httponly"]


@pytest.mark.parametrize(
    "forged",
    [
        "not-a-signed-value",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:1tAmpr:ed0000000000000000000000000000000000000000",
        "",
    ],
)
def test_forged_visitor_cookie_is_treated_as_a_new_visitor(make_visitor, forged):
    owner = make_visitor()
    assert owner.decide(GRANT_ALL).status_code == 201
    intruder = make_visitor()
    intruder.client.cookies["consent_vid"] = forged

    response = intruder.consent()

    assert response.status_code == 200
    assert response.json()["needs_prompt"] is True
    assert response.cookies["consent_vid"].value not in {forged, owner.visitor_id_cookie}


def test_tampered_cookie_of_another_visitor_does_not_reveal_their_consent(make_visitor):
    owner = make_visitor()
    assert owner.decide(GRANT_ALL).status_code == 201
    signed = owner.visitor_id_cookie
    assert signed is not None
    value, _, signature = signed.partition(":")
    tampered = f"{value[:-1]}{'A' if value[-1] != 'A' else 'B'}:{signature}"
    intruder = make_visitor()
    intruder.client.cookies["consent_vid"] = tampered

    response = intruder.consent()

    assert response.status_code == 200
    assert response.json()["purposes"]["analytics"]["granted"] is False
    assert response.cookies["consent_vid"].value != signed


def test_a_cookie_older_than_its_lifetime_starts_a_new_visitor(visitor, time_machine):
    time_machine.move_to(datetime(2026, 1, 1, tzinfo=UTC))
    visitor.decide(GRANT_ALL)
    first_cookie = visitor.visitor_id_cookie
    time_machine.move_to(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=401))

    response = visitor.consent()

    assert response.status_code == 200
    assert response.json()["purposes"]["analytics"]["choice"] is None
    assert response.cookies["consent_vid"].value != first_cookie


def test_a_write_renews_the_visitor_cookie(visitor):
    visitor.config()

    response = visitor.decide(GRANT_ALL)

    assert response.cookies["consent_vid"]["max-age"] == COOKIE_MAX_AGE
    assert response.cookies["consent_vid"]["httponly"]


# --- POST /consent/ -------------------------------------------------------------------


def test_post_answers_the_new_state_in_the_schema_shape(visitor):
    response = visitor.decide({"analytics": False}, source="banner")

    assert response.status_code == 201
    body = response.json()
    assert_matches_schema(body, "ConsentState")
    assert body["purposes"]["analytics"]["choice"] is False
    assert body["purposes"]["session_replay"]["choice"] is None
    assert body["needs_prompt"] is True  # session_replay is still undecided
    record = ConsentRecord.objects.get()
    assert record.source == "banner"
    assert record.choices == {"analytics": False}
    assert response["Cache-Control"] == "private, no-store"


def test_the_record_keeps_the_request_id_and_truncated_ip_as_evidence(visitor):
    response = visitor.decide(
        GRANT_ALL, headers={"X-Request-ID": "req-42", "User-Agent": "Banner/1.0"}
    )

    assert response["X-Request-ID"] == "req-42"
    record = ConsentRecord.objects.select_related("evidence").get()
    assert record.request_id == "req-42"
    assert record.evidence.user_agent == "Banner/1.0"
    assert record.evidence.ip_truncated == "127.0.0.0"


def test_purposes_left_out_keep_their_current_decision(visitor):
    visitor.decide(GRANT_ALL)

    body = visitor.decide({"session_replay": False}).json()

    assert body["purposes"]["analytics"]["granted"] is True
    assert body["purposes"]["session_replay"]["granted"] is False


def test_unknown_purpose_gets_400_naming_the_purpose(visitor):
    response = visitor.decide({"analytics": True, "fingerprinting": True})

    body = assert_error(
        response,
        400,
        "invalid_input",
        attr="purposes.fingerprinting",
        error_type="validation_error",
    )
    assert body["errors"] == [
        {"attr": "purposes.fingerprinting", "code": "unknown_purpose", "detail": "Unknown purpose."}
    ]
    assert ConsentRecord.objects.count() == 0


def test_missing_purposes_gets_400_on_purposes(visitor):
    response = visitor.post(CONSENT_URL, {"policy_version": "1"})

    body = assert_error(response, 400, "invalid_input", attr="purposes")
    assert body["errors"][0]["code"] == "required"


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, ["analytics"], {"granted": True}])
def test_a_choice_that_is_not_a_json_boolean_gets_400(visitor, value):
    response = visitor.decide({"analytics": value})

    assert_error(response, 400, "invalid_input", attr="purposes.analytics")
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize("purposes", [None, ["analytics"], "analytics", True])
def test_purposes_that_are_not_an_object_get_400(visitor, purposes):
    response = visitor.post(CONSENT_URL, {"purposes": purposes, "policy_version": "1"})

    assert_error(response, 400, "invalid_input", attr="purposes")
    assert ConsentRecord.objects.count() == 0


def test_empty_purposes_get_400(visitor):
    response = visitor.decide({})

    body = assert_error(response, 400, "invalid_input", attr="purposes")
    assert body["errors"][0]["code"] == "empty"
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize(
    "field", [{"recorded_at": "2020-01-01T00:00:00Z"}, {"subject": "x"}, {"gpc": False}]
)
def test_unknown_top_level_field_gets_400(visitor, field):
    response = visitor.decide({"analytics": True}, **field)

    (name,) = field
    body = assert_error(response, 400, "invalid_input", attr=name)
    assert body["errors"][0]["code"] == "unknown_field"
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize("source", ["admin", "gpc", "login"])
def test_a_client_cannot_claim_a_privileged_source(visitor, source):
    response = visitor.decide({"analytics": True}, source=source)

    body = assert_error(response, 400, "invalid_input", attr="source")
    assert body["errors"][0]["code"] == "invalid_choice"
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize("body", [[], ["analytics"], "consent", 1, None])
def test_a_body_that_is_not_an_object_gets_400(visitor, body):
    response = visitor.post(CONSENT_URL, json.dumps(body))

    assert_error(response, 400, "invalid_input")
    assert ConsentRecord.objects.count() == 0


def test_stale_policy_version_gets_409_naming_the_current_one(visitor):
    response = visitor.decide({"analytics": True}, policy_version="0")

    body = assert_error(
        response, 409, "stale_policy_version", attr="policy_version", error_type="conflict"
    )
    assert body["extra"] == {"current_policy_version": "1"}
    assert ConsentRecord.objects.count() == 0


def test_missing_policy_version_gets_400(visitor):
    response = visitor.post(CONSENT_URL, {"purposes": {"analytics": True}})

    assert_error(response, 400, "invalid_input", attr="policy_version")


@pytest.mark.parametrize("raw", ['{"purposes": {"analytics": true}', "{'a': 1}", "nope", "\xff"])
def test_malformed_json_gets_400_parse_error(visitor, raw):
    response = visitor.post(CONSENT_URL, raw)

    assert_error(response, 400, "parse_error", error_type="validation_error")
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", json.dumps({"purposes": {"analytics": True}, "policy_version": "1"})),
        ("application/x-www-form-urlencoded", "purposes=analytics&policy_version=1"),
    ],
)
def test_a_body_that_is_not_json_gets_415_and_stores_nothing(visitor, content_type, data):
    response = visitor.post(CONSENT_URL, data, content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "form"),
    [
        (CONSENT_URL, {"purposes": "analytics", "policy_version": "1"}),
        (WITHDRAW_URL, {"source": "banner"}),
    ],
)
def test_a_multipart_form_gets_415_and_stores_nothing(visitor, url, form):
    token = visitor.csrf_token
    response = visitor.client.post(url, {**form, "csrfmiddlewaretoken": token})

    assert_error(response, 415, "unsupported_media_type")
    assert ConsentRecord.objects.count() == 0


def test_oversized_body_gets_413_envelope_and_stores_nothing(visitor):
    body = json.dumps({"purposes": {"analytics": True}, "policy_version": "1"})
    padded = body[:-1] + " " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + "}"

    response = visitor.post(CONSENT_URL, padded)

    assert_error(response, 413, "body_too_large")
    assert ConsentRecord.objects.count() == 0


def test_a_body_just_under_the_limit_is_accepted(visitor):
    body = json.dumps({"purposes": {"analytics": True}, "policy_version": "1"})
    padded = body[:-1] + " " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(body)) + "}"
    assert len(padded.encode()) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = visitor.post(CONSENT_URL, padded)

    assert response.status_code == 201


@pytest.mark.parametrize("placeholder", ["undefined", "null", "Anonymous", " none ", "0", ""])
def test_placeholder_distinct_id_gets_400(visitor, placeholder):
    response = visitor.decide({"analytics": True}, distinct_id=placeholder)

    assert_error(response, 400, "invalid_input", attr="distinct_id")
    assert ConsentRecord.objects.count() == 0
    assert not SubjectIdentifier.objects.filter(kind="distinct_id").exists()


def test_a_posthog_anonymous_id_is_claimed_by_the_visitor(visitor):
    response = visitor.decide({"analytics": True}, distinct_id=DEVICE)

    assert response.status_code == 201
    bound = SubjectIdentifier.objects.get(kind=SubjectIdentifier.Kind.DISTINCT_ID)
    assert bound.value == DEVICE
    visitor_identifier = SubjectIdentifier.objects.get(kind=SubjectIdentifier.Kind.VISITOR)
    assert bound.subject_id == visitor_identifier.subject_id


def test_a_distinct_id_bound_to_someone_else_is_409_and_nothing_is_written(make_visitor):
    first, second = make_visitor(), make_visitor()
    first.decide({"analytics": True}, distinct_id=DEVICE)
    records = ConsentRecord.objects.count()

    response = second.decide(
        {"analytics": True}, distinct_id=DEVICE, headers={"Idempotency-Key": "k-409"}
    )

    body = assert_error(response, 409, "distinct_id_taken", attr="distinct_id")
    assert body["type"] == "conflict"
    assert ConsentRecord.objects.count() == records
    assert SubjectIdentifier.objects.filter(kind="visitor").count() == 1  # no second subject
    bound = SubjectIdentifier.objects.get(kind=SubjectIdentifier.Kind.DISTINCT_ID)
    assert bound.subject_id == ConsentRecord.objects.get().subject_id
    # The key was released: the same request may be retried (and is refused again).
    retried = second.decide(
        {"analytics": True}, distinct_id=DEVICE, headers={"Idempotency-Key": "k-409"}
    )
    assert retried.json()["code"] == "distinct_id_taken"


def test_another_persons_id_is_409_whatever_they_decided(make_visitor):
    refusing = make_visitor()
    refusing.decide({"analytics": False}, distinct_id=DEVICE)

    response = make_visitor().decide({"analytics": True}, distinct_id=DEVICE)

    assert_error(response, 409, "distinct_id_taken", attr="distinct_id")


@pytest.mark.parametrize(
    "guessable",
    ["user-1", "42", "ada@example.com", "0191-made-up", "8ec5d38c-e51c-4c50-835c-5baa510d4616"],
)
def test_an_unbound_id_a_browser_may_not_claim_is_400_and_nothing_is_written(visitor, guessable):
    response = visitor.decide({"analytics": True}, distinct_id=guessable)

    assert_error(response, 400, "invalid_distinct_id", attr="distinct_id")
    assert ConsentRecord.objects.count() == 0
    assert not SubjectIdentifier.objects.exists()


@override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=True)
def test_with_the_trust_setting_any_unbound_id_may_be_claimed(visitor):
    response = visitor.decide({"analytics": True}, distinct_id="ada@example.com")

    assert response.status_code == 201
    assert SubjectIdentifier.objects.filter(value="ada@example.com").exists()


@override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=True)
def test_a_minted_looking_id_is_never_claimable_even_with_the_trust_setting(visitor):
    response = visitor.decide({"analytics": True}, distinct_id="cs_made-up-by-a-browser")

    assert_error(response, 400, "invalid_distinct_id", attr="distinct_id")
    assert not SubjectIdentifier.objects.exists()


def test_the_callers_own_id_is_fine_even_after_it_was_refused(visitor):
    visitor.decide({"analytics": True}, distinct_id=DEVICE)
    visitor.withdraw()

    response = visitor.decide({"analytics": True}, distinct_id=DEVICE)

    assert response.status_code == 201
    assert SubjectIdentifier.objects.get(value=DEVICE).refused_at is not None  # still refused


# --- POST /consent/withdraw/ ----------------------------------------------------------


def test_withdraw_refuses_every_purpose_in_one_call(visitor):
    visitor.decide(GRANT_ALL)

    response = visitor.withdraw()

    assert response.status_code == 201
    body = response.json()
    assert_matches_schema(body, "ConsentState")
    assert all(p["granted"] is False for p in body["purposes"].values())
    assert all(p["current"] is True for p in body["purposes"].values())
    record = ConsentRecord.objects.order_by("-seq").first()
    assert record is not None
    assert record.action == "withdraw"
    assert record.choices == {"analytics": False, "session_replay": False}


def test_after_withdrawal_get_shows_everything_refused_and_no_prompt(visitor):
    visitor.decide(GRANT_ALL)
    visitor.withdraw()

    body = visitor.consent().json()

    assert {key: p["granted"] for key, p in body["purposes"].items()} == {
        "analytics": False,
        "session_replay": False,
    }
    assert body["needs_prompt"] is False


def test_history_after_withdrawal_lists_both_records_newest_first(visitor):
    visitor.decide(GRANT_ALL)
    visitor.withdraw()

    results = visitor.history().json()["results"]

    assert [r["action"] for r in results] == ["withdraw", "decide"]
    assert results[0]["seq"] > results[1]["seq"]
    assert results[1]["choices"] == GRANT_ALL


@pytest.mark.parametrize("content_type", ["application/json", "", "text/plain"])
def test_withdraw_without_a_body_works(visitor, content_type):
    headers = {"X-CSRFToken": visitor.csrf_token}
    response = visitor.client.generic(
        "POST", WITHDRAW_URL, b"", content_type=content_type, headers=headers
    )

    assert response.status_code == 201


def test_withdraw_with_an_unknown_field_gets_400(visitor):
    response = visitor.withdraw({"purposes": {"analytics": False}})

    body = assert_error(response, 400, "invalid_input", attr="purposes")
    assert body["errors"][0]["code"] == "unknown_field"
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize("body", [None, [], 0, False, "", ["analytics"], "all"])
def test_withdraw_with_a_body_that_is_not_an_object_gets_400(visitor, body):
    response = visitor.post(WITHDRAW_URL, json.dumps(body))

    assert_error(response, 400, "invalid_input")
    assert ConsentRecord.objects.count() == 0


def test_withdraw_records_the_source_it_was_made_in(visitor):
    visitor.withdraw({"source": "banner"})

    assert ConsentRecord.objects.get().source == "banner"


# --- GET /consent/history/ ------------------------------------------------------------


def test_history_shows_only_the_callers_own_records(make_visitor):
    alice, bob = make_visitor(), make_visitor()
    alice.decide({"analytics": True})
    bob.decide({"analytics": False})
    alice.withdraw()

    alice_history = alice.history().json()["results"]
    bob_history = bob.history().json()["results"]

    assert [r["action"] for r in alice_history] == ["withdraw", "decide"]
    assert [r["choices"] for r in bob_history] == [{"analytics": False}]
    alice_hashes = {r["hash"] for r in alice_history}
    assert alice_hashes.isdisjoint(r["hash"] for r in bob_history)


def test_history_of_a_new_visitor_is_empty(visitor):
    response = visitor.history()

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}
    assert response["Cache-Control"] == "private, no-store"


def test_history_records_match_the_schema(visitor):
    visitor.decide({"analytics": True}, distinct_id=DEVICE)

    body = visitor.history().json()

    assert_matches_schema(body, "PaginatedConsentRecordList")
    (record,) = body["results"]
    assert record["source"] == "api"
    assert record["gpc"] is False
    assert record["policy_version"] == "1"
    assert len(record["hash"]) == 64


def test_history_pages_with_a_cursor_and_page_size(visitor):
    for granted in [True, False, True, False, True]:
        visitor.decide({"analytics": granted})

    pages, url = [], f"{HISTORY_URL}?page_size=2"
    while url:
        body = visitor.client.get(url).json()
        pages.append([r["seq"] for r in body["results"]])
        url = body["next"]

    assert [len(page) for page in pages] == [2, 2, 1]
    seqs = [seq for page in pages for seq in page]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == 5


def test_history_page_size_is_capped(visitor):
    visitor.decide({"analytics": True})

    response = visitor.history(page_size="100000")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_history_with_a_garbage_cursor_gets_404_envelope(visitor):
    visitor.decide({"analytics": True})

    response = visitor.history(cursor="garbage")

    assert_error(response, 404, "not_found", error_type="not_found")
