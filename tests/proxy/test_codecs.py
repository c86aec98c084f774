from __future__ import annotations

import base64
import gzip
import json
import zlib
from urllib.parse import quote

import pytest

from consent_service.proxy.codecs import (
    Limits,
    PayloadError,
    decode_payload,
    event_distinct_id,
    normalise_id,
)
from tests.fixtures.captures import load_captures

LIMITS = Limits(max_decoded_bytes=1 << 20, max_events=100)
CAPTURES = [c for c in load_captures() if c.method == "POST"]


def decode(body: bytes, *, query=None, content_type="text/plain", encoding="", limits=LIMITS):
    return decode_payload(
        body=body,
        query=query or {},
        content_type=content_type,
        content_encoding=encoding,
        limits=limits,
    )


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: c.name)
def test_every_captured_body_decodes_to_what_the_client_sent(capture):
    payload = decode(
        capture.body,
        query=capture.query_dict,
        content_type=capture.header("Content-Type"),
        encoding=capture.header("Content-Encoding"),
        limits=Limits(64 << 20, 10_000),
    )

    assert payload.events == capture.events


def test_gzip_is_detected_by_magic_bytes_whatever_the_headers_say():
    body = gzip.compress(b'[{"event": "e", "properties": {"distinct_id": "a"}}]')

    assert decode(body, content_type="application/json").events[0]["event"] == "e"


def test_the_legacy_base64_form_is_decoded():
    data = base64.b64encode(b'{"event": "e", "distinct_id": "a"}').decode()
    body = f"data={quote(data)}".encode()

    payload = decode(
        body,
        query={"compression": "base64"},
        content_type="application/x-www-form-urlencoded",
    )

    assert payload.shape == "single"
    assert event_distinct_id(payload.events[0]) == "a"


def test_a_legacy_get_with_data_in_the_query_is_decoded():
    data = base64.b64encode(b'{"event": "e", "distinct_id": "a"}').decode()

    assert decode(b"", query={"data": data}).events[0]["distinct_id"] == "a"


def test_a_gzip_bomb_stops_at_the_cap_with_bounded_memory():
    bomb = gzip.compress(b"\x00" * (50 << 20))  # 50 MiB of zeros, about 50 KiB compressed

    with pytest.raises(PayloadError) as caught:
        decode(bomb)

    assert (caught.value.status, caught.value.code) == (413, "payload_too_large")


def test_a_truncated_gzip_body_is_a_400():
    body = gzip.compress(b'{"batch": [{"event": "e", "distinct_id": "a"}]}')[:-12]

    with pytest.raises(PayloadError) as caught:
        decode(body)

    assert (caught.value.status, caught.value.code) == (400, "truncated_gzip")


def test_several_gzip_members_are_all_read():
    body = gzip.compress(b'{"batch": [{"event": "e", ') + gzip.compress(b'"distinct_id": "a"}]}')

    assert decode(body).events == [{"event": "e", "distinct_id": "a"}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x00\xff garbage", "invalid_json"),
        (b"", "invalid_json"),
        (b"42", "invalid_payload"),
        (b'{"batch": {}}', "invalid_payload"),
        (b'{"batch": []}', "empty_batch"),
        (b"[" * 600 + b"]" * 600, "json_too_complex"),
        (b"[" + b"{}," * 100_000 + b"{}]", "json_too_complex"),
        (b"\x1f\x8b\x08garbage", "invalid_gzip"),
        # Not JSON, or out of PostHog's range: its parser would refuse the whole body.
        (b'[{"event": "e", "properties": {"n": NaN}}]', "invalid_json"),
        (b'[{"event": "e", "properties": {"n": -Infinity}}]', "invalid_json"),
        (b'[{"event": "e", "properties": {"n": 1e400}}]', "invalid_json"),
    ],
)
def test_malformed_bodies_are_400s(body, code):
    with pytest.raises(PayloadError) as caught:
        decode(body)

    assert (caught.value.status, caught.value.code) == (400, code)


def test_lz64_is_refused():
    with pytest.raises(PayloadError) as caught:
        decode(b"N4Ig", query={"compression": "lz64"})

    assert caught.value.code == "unsupported_compression"


def test_too_many_events_is_a_413():
    body = json.dumps([{"event": "e", "distinct_id": "a"}] * 101).encode()

    with pytest.raises(PayloadError) as caught:
        decode(body)

    assert (caught.value.status, caught.value.code) == (413, "too_many_events")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"distinct_id": "top"}, "top"),
        ({"$distinct_id": "dollar"}, "dollar"),
        ({"properties": {"distinct_id": "prop"}}, "prop"),
        ({"distinct_id": 42}, "42"),
        ({"distinct_id": "a\x00b"}, "a\ufffdb"),
        ({"distinct_id": "x" * 300}, "x" * 200),
        ({"properties": {}}, None),
        ({"distinct_id": ""}, None),
    ],
)
def test_distinct_id_is_found_as_posthog_finds_it(event, expected):
    assert event_distinct_id(event) == expected


def test_a_zlib_stream_marked_gzip_is_refused():
    with pytest.raises(PayloadError):
        decode(zlib.compress(b"{}"), encoding="gzip")


def test_nesting_up_to_the_limit_is_accepted_and_one_deeper_is_not():
    limits = Limits(1 << 20, 100, max_depth=512)
    head = b'[{"event": "e", "properties": {"a": '  # three levels
    deepest = head + b"[" * 509 + b"]" * 509 + b"}}]"
    too_deep = head + b"[" * 510 + b"]" * 510 + b"}}]"

    assert decode(deepest, limits=limits).events[0]["event"] == "e"
    with pytest.raises(PayloadError) as caught:
        decode(too_deep, limits=limits)
    assert caught.value.code == "json_too_complex"


def test_brackets_inside_strings_are_not_nesting():
    css = "a{b{c{d}}}" * 2000  # rrweb snapshots carry stylesheets
    body = json.dumps([{"event": "$snapshot", "properties": {"css": css}}]).encode()

    assert decode(body).events[0]["properties"]["css"] == css


def test_invalid_utf8_and_lone_surrogates_are_read_not_refused():
    body = b'[{"event": "e", "properties": {"a": "\xff", "b": "\\ud800"}}]'

    properties = decode(body).events[0]["properties"]

    assert properties == {"a": "\ufffd", "b": "\ud800"}  # the encoder replaces the surrogate


def test_ids_are_normalised_as_posthog_stores_them_and_as_we_forward_them():
    assert normalise_id("a\ud800b") == "a\ufffdb"
    assert normalise_id({"k": [1, True]}) == '{"k":[1,true]}'  # serde's compact JSON
