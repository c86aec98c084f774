from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from django.test import Client

from consent_service.ledger.models import ConsentRecord, Subject
from tests.api.contract import assert_error
from tests.conftest import CONFIG_URL, CONSENT_URL, GRANT_ALL, HISTORY_URL, WITHDRAW_URL

pytestmark = pytest.mark.django_db

DECISION = {"purposes": GRANT_ALL, "policy_version": "1"}


# --- Routing and methods --------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nope/", "/api/v1/consent/nope/", "/api/v2/consent/", "/api/"]
)
def test_unknown_api_path_gets_404_envelope(visitor, path):
    response = visitor.client.get(path)

    assert_error(response, 404, "not_found", error_type="not_found")


def test_unknown_path_outside_the_api_keeps_djangos_page(visitor):
    response = visitor.client.get("/nope/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_request_id_is_echoed_in_the_envelope(visitor):
    response = visitor.client.get("/api/v1/nope/", headers={"X-Request-ID": "support-4711"})

    body = assert_error(response, 404, "not_found")
    assert body["request_id"] == "support-4711"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", [CONSENT_URL, WITHDRAW_URL, HISTORY_URL, CONFIG_URL])
def test_methods_that_would_change_the_ledger_get_405(visitor, method, url):
    call = getattr(visitor.client, method)

    response = call(url, "{}", content_type="application/json", **_csrf(visitor))

    body = assert_error(response, 405, "method_not_allowed", error_type="client_error")
    assert method.upper() in body["detail"]
    assert "PUT" not in response["Allow"]
    assert "DELETE" not in response["Allow"]


def test_get_on_withdraw_gets_405(visitor):
    response = visitor.client.get(WITHDRAW_URL)

    assert_error(response, 405, "method_not_allowed")


def test_a_write_method_without_a_csrf_token_is_refused_before_anything_else(visitor):
    visitor.config()

    response = visitor.client.delete(CONSENT_URL)

    assert_error(response, 403, "csrf_failed", error_type="permission_error")


def test_no_endpoint_takes_a_subject_id(make_visitor):
    owner, intruder = make_visitor(), make_visitor()
    owner.decide(GRANT_ALL)
    subject = str(Subject.objects.get().uuid)

    by_path = intruder.client.get(f"{CONSENT_URL}{subject}/")
    by_query = intruder.client.get(CONSENT_URL, {"subject": subject, "subject_id": subject})
    history = intruder.client.get(HISTORY_URL, {"subject": subject, "subject_id": subject})
    by_body = intruder.decide({"analytics": False}, subject=subject)

    assert_error(by_path, 404, "not_found")
    assert by_query.json()["purposes"]["analytics"]["granted"] is False
    assert history.json()["results"] == []
    assert_error(by_body, 400, "invalid_input", attr="subject")
    assert owner.consent().json()["purposes"]["analytics"]["granted"] is True
    assert ConsentRecord.objects.count() == 1


# --- CSRF -----------------------------------------------------------------------------


def _csrf(visitor) -> dict[str, Any]:
    return {"headers": {"X-CSRFToken": visitor.csrf_token}}


def test_post_without_a_csrf_header_gets_403_and_records_nothing(visitor):
    visitor.config()

    response = visitor.client.post(CONSENT_URL, DECISION, content_type="application/json")

    body = assert_error(response, 403, "csrf_failed", error_type="permission_error")
    assert "CSRF" in body["detail"]
    assert ConsentRecord.objects.count() == 0


def test_withdraw_without_a_csrf_header_gets_403(visitor):
    visitor.config()

    response = visitor.client.post(WITHDRAW_URL, {}, content_type="application/json")

    assert_error(response, 403, "csrf_failed")
    assert ConsentRecord.objects.count() == 0


def test_post_without_the_csrf_cookie_gets_403(visitor):
    token = visitor.csrf_token
    del visitor.client.cookies["csrftoken"]

    response = visitor.decide(GRANT_ALL, headers={"X-CSRFToken": token})

    assert_error(response, 403, "csrf_failed")
    assert ConsentRecord.objects.count() == 0


def test_post_with_a_wrong_csrf_token_gets_403(visitor):
    visitor.config()

    response = visitor.decide(GRANT_ALL, headers={"X-CSRFToken": "x" * 32})

    assert_error(response, 403, "csrf_failed")


def test_a_post_with_no_cookies_at_all_gets_403():
    client = Client(enforce_csrf_checks=True)

    response = client.post(CONSENT_URL, DECISION, content_type="application/json")

    assert_error(response, 403, "csrf_failed")
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize("secure", [True, False], ids=["https", "http"])
def test_cross_site_post_with_a_valid_token_gets_403(visitor, secure):
    visitor.config()
    headers = {"Origin": "https://evil.example", "Referer": "https://evil.example/page"}

    response = visitor.post(CONSENT_URL, DECISION, headers=headers, secure=secure)

    body = assert_error(response, 403, "csrf_failed", error_type="permission_error")
    assert "Origin checking failed" in body["detail"]
    assert ConsentRecord.objects.count() == 0


def test_cross_site_https_post_with_only_a_foreign_referer_gets_403(visitor):
    visitor.config()

    headers = {"Referer": "https://evil.example/page"}

    response = visitor.post(CONSENT_URL, DECISION, headers=headers, secure=True)

    body = assert_error(response, 403, "csrf_failed")
    assert "Referer checking failed" in body["detail"]
    assert ConsentRecord.objects.count() == 0


def test_https_post_without_a_referer_gets_403(visitor):
    visitor.config()

    response = visitor.post(CONSENT_URL, DECISION, secure=True)

    assert_error(response, 403, "csrf_failed")
    assert ConsentRecord.objects.count() == 0


def test_same_origin_https_post_is_accepted(visitor):
    visitor.config()
    headers = {"Origin": "https://testserver", "Referer": "https://testserver/shop/"}

    response = visitor.post(CONSENT_URL, DECISION, headers=headers, secure=True)

    assert response.status_code == 201
    assert ConsentRecord.objects.count() == 1


def test_a_logged_in_users_post_needs_csrf_too(visitor, django_user_model):
    user = django_user_model.objects.create_user("ada", password="irrelevant-password-42")
    visitor.log_in(user)
    visitor.config()

    response = visitor.client.post(CONSENT_URL, DECISION, content_type="application/json")

    body = assert_error(response, 403, "csrf_failed", error_type="permission_error")
    assert body["detail"] == "CSRF failed: CSRF token missing."
    assert ConsentRecord.objects.count() == 0


def test_a_logged_in_users_cross_site_post_gets_403(visitor, django_user_model):
    user = django_user_model.objects.create_user("ada", password="irrelevant-password-42")
    visitor.log_in(user)
    headers = {"Origin": "https://evil.example"}

    response = visitor.post(CONSENT_URL, DECISION, headers=headers, secure=True)

    assert_error(response, 403, "csrf_failed")
    assert ConsentRecord.objects.count() == 0


def test_a_logged_in_users_same_origin_post_is_accepted(visitor, django_user_model):
    user = django_user_model.objects.create_user("ada", password="irrelevant-password-42")
    visitor.log_in(user)

    response = visitor.decide(GRANT_ALL)

    assert response.status_code == 201


# --- Throttling and server errors -----------------------------------------------------


def test_too_many_writes_get_429_with_retry_after(visitor, settings):
    settings.CONSENT_WRITE_RATE = "2/min"
    assert visitor.decide(GRANT_ALL).status_code == 201
    assert visitor.withdraw().status_code == 201

    response = visitor.decide(GRANT_ALL)

    assert_error(response, 429, "throttled", error_type="rate_limited")
    assert int(response["Retry-After"]) > 0
    assert ConsentRecord.objects.count() == 2
    assert visitor.consent().status_code == 200  # reads are not throttled


def test_an_unexpected_exception_gets_a_500_envelope_without_details(visitor):
    client = visitor.client
    client.raise_request_exception = False

    with patch(
        "consent_service.consent.apis.consent_current", side_effect=RuntimeError("secret detail")
    ):
        response = client.get(CONSENT_URL)

    body = assert_error(response, 500, "server_error", error_type="server_error")
    assert "secret" not in response.content.decode()
    assert body["detail"] == "Internal server error."
