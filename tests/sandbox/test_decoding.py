"""From bytes to JSON as PostHog's capture reads them (PROTOCOL 3.2): the sandbox's own
decoder, checked over HTTP. Sources: rust/capture/src/payload/{common,decompression,types}.rs,
utils.rs, and serde_json's strictness."""

from __future__ import annotations

import base64
import gzip
import json
from urllib.parse import quote

import pytest

from tests.sandbox.payloads import TOKEN, event

FORM = "application/x-www-form-urlencoded"


def code(response) -> str:
    return str(response.json()["code"])


def events_json(*names: str) -> bytes:
    return json.dumps([event(name, "u1") for name in names]).encode()


def stored(server) -> list[str]:
    return [captured.event["event"] for captured in server.store.events]


def test_the_data_query_parameter_wins_over_the_body(server, client):
    data = base64.b64encode(events_json("from-query")).decode()

    response = client.post(f"/e/?data={quote(data)}", content=events_json("from-body"))

    assert response.status_code == 200
    assert stored(server) == ["from-query"]


def test_an_empty_payload_is_400(client):
    response = client.post("/i/v0/e/", content=b"")

    assert (response.status_code, code(response)) == (400, "empty_payload")


@pytest.mark.parametrize("route", ["/i/v0/e/", "/batch/", "/e/"])
def test_a_whole_body_in_strict_base64_is_decoded_on_every_route(server, client, route):
    response = client.post(route, content=base64.b64encode(events_json("b64")))

    assert response.status_code == 200
    assert stored(server) == ["b64"]


def test_base64_without_its_padding_is_not_decoded(client):
    text = events_json("b64")
    text += b" " * (len(text) % 3 == 0)  # a length that base64 must pad
    body = base64.b64encode(text).rstrip(b"=")

    response = client.post("/i/v0/e/", content=body)

    assert (response.status_code, code(response)) == (400, "request_parsing_error")


def test_base64_twice_is_unwrapped_on_legacy_routes_only(server, client):
    body = base64.b64encode(base64.b64encode(events_json("twice")))

    assert client.post("/e/", content=body).status_code == 200
    assert client.post("/i/v0/e/", content=body).status_code == 400
    assert stored(server) == ["twice"]


def test_a_form_body_gives_its_data_field(server, client):
    body = f"data={quote(events_json('form').decode())}&ver=1.2.3"

    response = client.post("/i/v0/e/", content=body, headers={"Content-Type": FORM})

    assert response.status_code == 200
    assert stored(server) == ["form"]


def test_a_form_is_a_form_only_under_the_exact_content_type(client):
    body = f"data={quote(events_json('form').decode())}"
    headers = {"Content-Type": FORM + "; charset=UTF-8"}

    response = client.post("/i/v0/e/", content=body, headers=headers)

    assert (response.status_code, code(response)) == (400, "request_parsing_error")


def base64_with_plus() -> str:
    """Base64 of an event list that holds a '+' (">>>" encodes as "Pj4+" once aligned)."""
    for pad in ("", "x", "xx"):
        text = json.dumps([event("plus", "u1", note=pad + ">>>")]).encode()
        encoded = base64.b64encode(text).decode()
        if "+" in encoded:
            return encoded
    raise AssertionError("no alignment gave a '+'")


def test_spaces_in_a_base64_form_field_are_turned_back_into_plus(server, client):
    body = "data=" + base64_with_plus().replace("+", " ")  # an encoder that left '+' bare

    response = client.post("/e/", content=body, headers={"Content-Type": FORM})

    assert response.status_code == 200
    assert stored(server) == ["plus"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [("ver=1.2.3", "expected form data"), ("data=a&data=b", "invalid urlencoded form data")],
)
def test_a_form_without_data_or_with_it_twice_is_400(client, body, problem):
    response = client.post("/e/", content=body, headers={"Content-Type": FORM})

    assert (response.status_code, code(response)) == (400, "request_decoding_error")
    assert problem in response.json()["error"]


def test_gzip_is_sniffed_by_its_magic_bytes_without_a_hint(server, client):
    response = client.post("/i/v0/e/", content=gzip.compress(events_json("sniffed")))

    assert response.status_code == 200
    assert stored(server) == ["sniffed"]


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("?compression=gzip-js", {}, 400),  # plain JSON said to be gzip
        ("", {"Content-Encoding": "gzip"}, 400),
        ("?compression=base64", {"Content-Encoding": "gzip"}, 200),  # the query wins
        ("?compression=nonsense", {"Content-Encoding": "gzip"}, 400),  # unknown: next source
        ("", {"Content-Encoding": "GZIP"}, 200),  # the header is compared as sent
    ],
)
def test_the_compression_hint_comes_from_query_then_header(client, query, headers, status):
    response = client.post(f"/i/v0/e/{query}", content=events_json("e"), headers=headers)

    assert response.status_code == status
    if status == 400:
        assert code(response) == "request_decoding_error"


def test_the_query_hint_wins_over_the_form_hint(client):
    body = f"data={quote(events_json('e').decode())}&compression=gzip"
    headers = {"Content-Type": FORM}

    assert client.post("/e/", content=body, headers=headers).status_code == 400
    assert client.post("/e/?compression=b64", content=body, headers=headers).status_code == 200


def test_only_the_first_gzip_member_is_read(server, client):
    """flate2's GzDecoder stops after one member; a multi-member reader would see both."""
    body = gzip.compress(events_json("first")) + gzip.compress(events_json("second"))

    assert client.post("/i/v0/e/", content=body).status_code == 200
    assert stored(server) == ["first"]


def test_a_document_split_over_two_gzip_members_is_400(server, client):
    text = events_json("a", "b")
    middle = len(text) // 2
    body = gzip.compress(text[:middle]) + gzip.compress(text[middle:])

    response = client.post("/i/v0/e/", content=body)

    assert (response.status_code, code(response)) == (400, "request_parsing_error")
    assert server.store.events == []


def test_bytes_after_the_first_gzip_member_are_ignored(server, client):
    body = gzip.compress(events_json("kept")) + b"\x00 trailing garbage"

    assert client.post("/i/v0/e/", content=body).status_code == 200
    assert stored(server) == ["kept"]


@pytest.mark.parametrize(
    "body",
    [
        events_json("e").replace(b"u1", b"u\xff1"),
        gzip.compress(events_json("e").replace(b"u1", b"\xc3(")),
    ],
    ids=["plain", "gzipped"],
)
def test_invalid_utf8_refuses_the_whole_request(server, client, body):
    response = client.post("/i/v0/e/", content=body)

    assert (response.status_code, code(response)) == (400, "request_decoding_error")
    assert server.store.events == []


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc00", "x\\ud83dy"])
def test_a_lone_surrogate_escape_refuses_the_whole_request(server, client, escape):
    good = json.dumps(event("good", "u1"))
    bad = json.dumps(event("bad", "u2", note="@")).replace("@", escape)

    response = client.post("/i/v0/e/", content=f"[{good},{bad}]")

    assert (response.status_code, code(response)) == (400, "request_parsing_error")
    assert server.store.events == []


def test_surrogate_pairs_and_escaped_backslashes_are_fine(server, client):
    text = json.dumps([event("e", "u1", pair="@", literal="#")])
    text = text.replace("@", "\\ud83d\\ude00").replace("#", "\\\\ud800")

    assert client.post("/i/v0/e/", content=text).status_code == 200
    properties = server.store.events[0].event["properties"]
    assert (properties["pair"], properties["literal"]) == ("\U0001f600", "\\ud800")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_serde_json_refuses_are_400(client, number):
    text = json.dumps([event("e", "u1", n="@")]).replace('"@"', number)

    response = client.post("/i/v0/e/", content=text)

    assert (response.status_code, code(response)) == (400, "request_parsing_error")


@pytest.mark.parametrize(("depth", "status"), [(127, 200), (128, 400), (5000, 400)])
def test_nesting_is_limited_as_serde_json_limits_it(client, depth, status):
    # array > event object > properties object > "deep": (depth - 3) levels of lists
    deep = "[" * (depth - 3) + "]" * (depth - 3)
    text = json.dumps([event("e", "u1", deep="@")]).replace('"@"', deep)

    assert client.post("/i/v0/e/", content=text).status_code == status


@pytest.mark.parametrize(
    "query", ["?_=soon", "?sent_at=1.5", "?beacon=yes", "?compression=gzip&compression=gzip"]
)
def test_query_parameters_that_do_not_fit_refuse_the_request(client, query):
    response = client.post(f"/e/{query}", content=events_json("e"))

    assert (response.status_code, code(response)) == (400, "invalid_query")


def test_unknown_and_well_typed_query_parameters_are_fine(client):
    query = "?ip=1&_=1764288000000&ver=1.449.2&retry_count=2&beacon=0"

    assert client.post(f"/e/{query}", content=events_json("e")).status_code == 200


def test_a_repeated_key_is_a_duplicate_field_in_an_event_but_not_in_properties(server, client):
    properties = f'{{"distinct_id":"u1","token":"{TOKEN}"'
    first = f'[{{"event":"a","event":"b","properties":{properties}}}}}]'
    second = f'[{{"event":"a","properties":{properties},"k":1,"k":2}}}}]'

    assert client.post("/i/v0/e/", content=first).status_code == 400
    assert client.post("/i/v0/e/", content=second).status_code == 200
    assert server.store.events[0].event["properties"]["k"] == 2
