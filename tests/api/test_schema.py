from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.api.contract import (
    assert_error,
    assert_matches_schema,
    component_properties,
    openapi_document,
)
from tests.conftest import CONFIG_URL, CONSENT_URL, GRANT_ALL, HISTORY_URL, WITHDRAW_URL, Visitor

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/v1/schema/"


def served_schema(visitor: Visitor, **params: str) -> Any:
    response = visitor.client.get(SCHEMA_URL, params)
    assert response.status_code == 200
    return response


def test_schema_endpoint_renders_yaml(visitor):
    response = served_schema(visitor)

    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "consent-service API"


def test_schema_endpoint_renders_json(visitor):
    response = served_schema(visitor, format="json")

    assert response.json()["paths"]


def test_served_schema_matches_the_committed_file(visitor):
    served = yaml.safe_load(served_schema(visitor).content)

    assert served == openapi_document(), "run `make schema` and commit openapi/schema.yaml"


PROXY_STATS_URL = "/api/v1/proxy/stats/"
ERASURE_REQUESTS_URL = "/api/v1/erasure-requests/"
ERASURE_REQUEST_URL = "/api/v1/erasure-requests/{id}/"
IDENTITY_URL = "/api/v1/identity/"
RECEIPT_URL = "/api/v1/consent/receipts/{receipt_id}/"
RECEIPT_KEY_URL = "/api/v1/consent/receipts/key/"
# Staff may address any subject (GDPR Art. 17 requests); visitors only ever themselves.
STAFF_ONLY_URLS = {ERASURE_REQUESTS_URL, ERASURE_REQUEST_URL}
# An id in the path that is looked up among the caller's own records only (404 otherwise).
CALLER_SCOPED_URLS = {RECEIPT_URL}


def test_schema_documents_exactly_the_public_endpoints():
    paths = openapi_document()["paths"]

    assert set(paths) == {
        CONFIG_URL,
        CONSENT_URL,
        WITHDRAW_URL,
        HISTORY_URL,
        PROXY_STATS_URL,
        ERASURE_REQUESTS_URL,
        ERASURE_REQUEST_URL,
        IDENTITY_URL,
        RECEIPT_URL,
        RECEIPT_KEY_URL,
    }
    assert set(paths[RECEIPT_URL]) == set(paths[RECEIPT_KEY_URL]) == {"get"}
    assert set(paths[IDENTITY_URL]) == {"post", "delete"}
    assert set(paths[ERASURE_REQUESTS_URL]) == {"get", "post"}
    assert set(paths[ERASURE_REQUEST_URL]) == {"get"}
    assert set(paths[PROXY_STATS_URL]) == {"get"}
    assert set(paths[CONSENT_URL]) == {"get", "post"}
    assert set(paths[WITHDRAW_URL]) == {"post"}
    assert set(paths[HISTORY_URL]) == {"get"}
    assert set(paths[CONFIG_URL]) == {"get"}


def test_no_operation_takes_a_subject_id():
    for path, operations in openapi_document()["paths"].items():
        if path in STAFF_ONLY_URLS:
            continue
        assert "{" not in path or path in CALLER_SCOPED_URLS
        for operation in operations.values():
            names = {parameter["name"].lower() for parameter in operation.get("parameters", [])}
            assert not any("subject" in name for name in names), path
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                name = body["schema"]["$ref"].rsplit("/", 1)[-1]
                assert not any("subject" in prop for prop in component_properties(name))


def test_every_documented_error_uses_the_envelope():
    for operations in openapi_document()["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_consent_state_keys_match_the_schema(visitor):
    undecided = visitor.consent().json()
    decided = visitor.decide(GRANT_ALL).json()
    withdrawn = visitor.withdraw().json()

    for body in (undecided, decided, withdrawn):
        assert set(body) == component_properties("ConsentState")
        assert_matches_schema(body, "ConsentState")
        for purpose in body["purposes"].values():
            assert set(purpose) == component_properties("PurposeState")


def test_client_config_keys_match_the_schema(visitor):
    before = visitor.config().json()
    visitor.decide(GRANT_ALL)
    after = visitor.config().json()

    for body in (before, after):
        assert set(body) == component_properties("ClientConfig")
        assert set(body["options"]) == component_properties("PosthogOptions")
        assert_matches_schema(body, "ClientConfig")


def test_history_page_matches_the_schema(visitor):
    visitor.decide(GRANT_ALL)
    visitor.withdraw()

    body = visitor.history(page_size="1").json()

    assert_matches_schema(body, "PaginatedConsentRecordList")
    assert set(body["results"][0]) == component_properties("ConsentRecord")


def test_error_responses_match_the_error_schema(visitor):
    without_token = visitor.client.post(CONSENT_URL, {}, content_type="application/json")
    responses = [
        (visitor.decide({"nope": True}), 400, "invalid_input", "purposes.nope"),
        (
            visitor.decide(GRANT_ALL, policy_version="0"),
            409,
            "stale_policy_version",
            "policy_version",
        ),
        (visitor.post(CONSENT_URL, "{"), 400, "parse_error", None),
        (without_token, 403, "csrf_failed", None),
        (visitor.client.get("/api/v1/missing/"), 404, "not_found", None),
    ]

    for response, status, code, attr in responses:
        assert_error(response, status, code, attr=attr)
