"""Which shape a body is read as, and the token and distinct_id of its events (PROTOCOL 3.3).

PostHog's capture deserializes the top level as serde's untagged `RawRequest` (Array, Batch,
One, Engage: the first that fits wins) and its events as `RawEvent`
(rust/capture/src/v0_request.rs, rust/common/types/src/event.rs). RELIABILITY P22/P23.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.payloads import TOKEN, event


def code(response) -> str:
    return str(response.json()["code"])


def smuggling(**envelope: Any) -> dict[str, Any]:
    """A batch envelope that also carries a top-level event of its own."""
    return {
        "api_key": TOKEN,
        "batch": [event("inner", "me"), event("inner", "me")],
        "event": "x",
        "distinct_id": "victim",
        "properties": {},
        **envelope,
    }


def stored(server) -> list[tuple[str, str | None]]:
    return [(item.event["event"], item.distinct_id) for item in server.store.events]


@pytest.mark.parametrize(
    "sent_at", [1733184000, 1.5, True, {"at": "now"}, ["2026-11-28T00:00:00Z"]]
)
def test_a_batch_whose_sent_at_is_no_string_is_read_as_one_event(server, client, sent_at):
    response = client.post("/batch/", json=smuggling(sent_at=sent_at))

    assert response.status_code == 200
    assert stored(server) == [("x", "victim")]


def test_a_null_sent_at_fits_the_option_and_the_batch_is_a_batch(server, client):
    response = client.post("/batch/", json=smuggling(sent_at=None))

    assert response.status_code == 200
    assert stored(server) == [("inner", "me"), ("inner", "me")]


@pytest.mark.parametrize(
    "breaker",
    [
        {"historical_migration": "yes"},
        {"batch": [event("inner", "me"), {**event("inner", "me"), "timestamp": 1733184000}]},
        {"batch": [event("inner", "me"), {**event("inner", "me"), "properties": None}]},
        {"batch": [event("inner", "me"), {**event("inner", "me"), "offset": 1.0}]},
        {"batch": [event("inner", "me"), {**event("inner", "me"), "uuid": "not-a-uuid"}]},
        {"batch": [event("inner", "me"), {**event("inner", "me"), "$set": ["a"]}]},
        {"batch": [event("inner", "me"), {"properties": {"distinct_id": "me"}}]},  # nameless
        {"batch": "not a list"},
    ],
    ids=["migration", "timestamp", "properties", "offset", "uuid", "set", "nameless", "list"],
)
def test_anything_that_breaks_the_batch_struct_makes_it_one_event(server, client, breaker):
    response = client.post("/i/v0/e/", json=smuggling(**breaker))

    assert response.status_code == 200
    assert stored(server) == [("x", "victim")]


def test_token_and_api_key_together_fit_no_struct(server, client):
    """Aliases of one serde field given twice: a duplicate field for Batch, One and Engage."""
    response = client.post("/batch/", json=smuggling(sent_at=1, token=TOKEN))

    assert (response.status_code, code(response)) == (400, "request_parsing_error")
    assert server.store.events == []


def test_an_array_with_one_bad_item_is_refused_whole(server, client):
    body = [event("good", "u1"), {**event("bad", "u2"), "timestamp": 5}]

    response = client.post("/i/v0/e/", json=body)

    assert (response.status_code, code(response)) == (400, "request_parsing_error")
    assert server.store.events == []


@pytest.mark.parametrize("body", [[], {"api_key": TOKEN, "batch": []}], ids=["array", "batch"])
def test_no_event_is_400(client, body):
    response = client.post("/batch/", json=body)

    assert (response.status_code, code(response)) == (400, "empty_batch")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("42", "request_parsing_error"),
        ('"text"', "request_parsing_error"),
        # Four base64 letters: decoded as a whole-body base64, into invalid UTF-8.
        ("null", "request_decoding_error"),
    ],
)
def test_a_scalar_body_is_no_shape(client, body, error):
    response = client.post("/batch/", content=body)

    assert (response.status_code, code(response)) == (400, error)


def test_performance_events_are_filtered_out(server, client):
    body = [event("$performance_event", "u1"), event("kept", "u1")]

    assert client.post("/i/v0/e/", json=body).status_code == 200
    assert stored(server) == [("kept", "u1")]
    response = client.post("/i/v0/e/", json=body[:1])
    assert (response.status_code, code(response)) == (400, "empty_payload_filtered")


# --- distinct_id -------------------------------------------------------------------------


def one(properties: dict[str, Any] | None = None, /, **root: Any) -> dict[str, Any]:
    """One event; root fields given as keywords (`**{"$distinct_id": ...}` for aliases)."""
    return {"event": "e", "token": TOKEN, "properties": properties or {}, **root}


def test_the_root_distinct_id_wins_over_the_properties_one(server, client):
    body = one({"distinct_id": "inner"}, distinct_id="root")

    assert client.post("/e/", json=body).status_code == 200
    assert server.store.events[0].distinct_id == "root"


def test_dollar_distinct_id_is_an_alias_of_the_root_field(server, client):
    assert client.post("/e/", json=one(**{"$distinct_id": "alias"})).status_code == 200
    assert server.store.events[0].distinct_id == "alias"
    response = client.post("/e/", json=one(**{"distinct_id": "a", "$distinct_id": "b"}))
    assert (response.status_code, code(response)) == (400, "request_parsing_error")


def test_a_null_root_falls_back_to_properties_but_an_empty_one_does_not(server, client):
    fallback = one({"distinct_id": "inner"}, distinct_id=None)
    assert client.post("/e/", json=fallback).status_code == 200
    assert server.store.events[0].distinct_id == "inner"
    response = client.post("/e/", json=one({"distinct_id": "inner"}, distinct_id=""))
    assert (response.status_code, code(response)) == (400, "missing_distinct_id")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (23, "23"),
        (23.4, "23.4"),
        (1e16, "1e16"),
        (True, "true"),
        (["a", "b"], '["a","b"]'),
        ({"string": "a", "number": 3}, '{"number":3,"string":"a"}'),
        (12345678901234567890123, "1.2345678901234568e22"),
        ("a\x00b", "a\ufffdb"),
        ("é" * 250, "é" * 200),
        ("  padded  ", "  padded  "),
    ],
    ids=["int", "float", "big-float", "bool", "list", "object", "huge-int", "nul", "long", "pad"],
)
def test_distinct_ids_are_stringified_cleaned_and_cut(server, client, value, expected):
    assert client.post("/e/", json=one(distinct_id=value)).status_code == 200
    assert server.store.events[0].distinct_id == expected


@pytest.mark.parametrize("value", ["", " \t\n\u3000"], ids=["empty", "blank"])
def test_an_empty_or_blank_distinct_id_is_400(server, client, value):
    response = client.post("/e/", json=one(distinct_id=value))

    assert (response.status_code, code(response)) == (400, "missing_distinct_id")


# --- token -------------------------------------------------------------------------------


def test_the_token_may_come_from_properties(server, client):
    body = {"event": "e", "distinct_id": "u1", "properties": {"token": TOKEN}}

    assert client.post("/e/", json=body).status_code == 200


def test_a_token_that_is_not_a_string_breaks_the_struct(client):
    body = {"event": "e", "distinct_id": "u1", "token": 12, "properties": {}}

    response = client.post("/e/", json=body)

    assert (response.status_code, code(response)) == (400, "request_parsing_error")


def test_a_properties_token_that_is_not_a_string_is_no_token(client):
    body = {"event": "e", "distinct_id": "u1", "properties": {"token": 12}}

    response = client.post("/e/", json=body)

    assert (response.status_code, code(response)) == (401, "ingest_key_required")


@pytest.mark.parametrize("token", ["", "   ", "phx_personal", "x" * 65, "phc_é"])
def test_a_token_that_cannot_be_a_projects_is_403(client, token):
    body = {"event": "e", "distinct_id": "u1", "token": token, "properties": {}}

    response = client.post("/e/", json=body)

    assert (response.status_code, code(response)) == (403, "ingest_key_unknown")


def test_the_token_is_trimmed(server, client):
    body = {"event": "e", "distinct_id": "u1", "token": f" {TOKEN}\n", "properties": {}}

    assert client.post("/e/", json=body).status_code == 200


def test_a_non_boolean_cookieless_flag_is_400(client):
    response = client.post("/e/", json=one({"$cookieless_mode": "yes"}, distinct_id="u1"))

    assert (response.status_code, code(response)) == (400, "invalid_cookieless_mode")


def test_an_empty_uuid_is_none_but_a_bad_one_fits_no_struct(server, client):
    assert client.post("/e/", json=one(distinct_id="u1", uuid="")).status_code == 200
    response = client.post("/e/", json=one(distinct_id="u1", uuid="not-a-uuid"))
    assert (response.status_code, code(response)) == (400, "request_parsing_error")
