"""A client that does not play along (RELIABILITY.md P21-P28). Every case asserts on what the
PostHog sandbox received and on the answer, which must not tell anyone anything."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client, override_settings

from tests.conftest import (
    TOKEN,
    Visitor,
    anonymous_id,
    delivered,
    forward_spool,
    nothing_reached,
)
from tests.proxy.misbehaving import misbehaving

pytestmark = pytest.mark.django_db

ALICE, BOB, WITHDRAWN = anonymous_id(0xA11CE), anonymous_id(0xB0B), anonymous_id(0xD1ED)
FRESH = anonymous_id(0xF4E5)  # bound to nobody yet
PER_REQUEST_HEADERS = {"X-Request-ID"}  # random for every request, whoever asks


def pageview(distinct_id: str, **properties: Any) -> dict[str, Any]:
    return {"event": "$pageview", "properties": {"distinct_id": distinct_id, **properties}}


def batch(*events: dict[str, Any], **envelope: Any) -> bytes:
    return json.dumps({"api_key": TOKEN, "batch": list(events), **envelope}).encode()


def post(client: Client, body: bytes, path: str = "/ph/e/") -> Any:
    return client.post(path, body, content_type="text/plain")


def granted(distinct_id: str) -> Visitor:
    """A visitor who granted everything and whose first event bound `distinct_id`."""
    visitor = Visitor()
    assert visitor.decide({"analytics": True, "session_replay": True}).status_code == 201
    assert post(visitor.client, batch(pageview(distinct_id))).status_code == 200
    return visitor


@dataclass
class People:
    alice: Visitor
    bob: Visitor
    withdrawn: Visitor


@pytest.fixture
def people(sandbox) -> People:
    alice, bob, withdrawn = granted(ALICE), granted(BOB), granted(WITHDRAWN)
    assert withdrawn.withdraw().status_code == 201
    forward_spool()
    sandbox.store.clear()
    return People(alice, bob, withdrawn)


def received(sandbox) -> list[tuple[str | None, str]]:
    return [(e.distinct_id, e.event["event"]) for e in delivered(sandbox)]


def answer_of(response: Any) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in PER_REQUEST_HEADERS)
    return response.status_code, response.content, tuple(headers) + tuple(sorted(response.cookies))


# --- P21: the caller decides for itself only ---------------------------------------------


def never_decided(people: People) -> Client:
    visitor = Visitor()
    visitor.config()  # has a visitor cookie, no decision
    return visitor.client


def refused(people: People) -> Client:
    visitor = Visitor()
    visitor.decide({"analytics": False, "session_replay": False})
    return visitor.client


CALLERS: dict[str, Callable[[People], Client]] = {
    "no cookie": lambda people: Client(),
    "forged cookie": lambda people: Client(HTTP_COOKIE="consent_vid=forged"),
    "never decided": never_decided,
    "refused": refused,
    "withdrawn": lambda people: people.withdrawn.client,
}


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("route", ["/ph/e/", "/ph/i/v0/e/", "/ph/batch/"])
def test_a_caller_without_a_grant_forwards_nothing_even_naming_a_consented_id(
    caller, route, sandbox, people
):
    client = CALLERS[caller](people)

    response = post(client, batch(pageview(ALICE), pageview(FRESH)), route)

    assert answer_of(response) == answer_of(post(people.alice.client, batch(pageview(ALICE))))
    assert received(sandbox) == [(ALICE, "$pageview")]  # alice's own request only


@pytest.mark.parametrize("caller", CALLERS, ids=str)
def test_flags_of_a_caller_without_a_grant_are_answered_here(caller, sandbox, people):
    body = json.dumps({"token": TOKEN, "distinct_id": ALICE}).encode()

    response = post(CALLERS[caller](people), body, "/ph/flags/?v=2")

    assert response.json()["flags"] == {}
    assert nothing_reached(sandbox)


FOREIGN_DISTINCT_IDS = {
    "properties.distinct_id": pageview(ALICE),
    "root distinct_id": {"event": "e", "distinct_id": ALICE, "properties": {"distinct_id": BOB}},
    "root $distinct_id": {"event": "e", "$distinct_id": ALICE, "properties": {"distinct_id": BOB}},
    "identify as alice": {
        "event": "$identify",
        "properties": {"distinct_id": ALICE, "$anon_distinct_id": BOB},
    },
    "numeric id of alice": {"event": "e", "distinct_id": 7, "properties": {}},
}


@pytest.mark.parametrize("case", FOREIGN_DISTINCT_IDS, ids=str)
def test_a_consented_caller_never_sends_as_another_subject(case, sandbox, people):
    if case == "numeric id of alice":
        granted("7")  # nobody claims a number through a browser; bind it as alice's anyway
    response = post(people.bob.client, batch(FOREIGN_DISTINCT_IDS[case], pageview(BOB)))

    assert response.json() == {"status": 1}
    assert received(sandbox) == [(BOB, "$pageview")]


LINKS = {
    "$identify $anon_distinct_id": ("$identify", "$anon_distinct_id"),
    "$create_alias alias": ("$create_alias", "alias"),
    "$merge_dangerously alias": ("$merge_dangerously", "alias"),
    "$device_id": ("$pageview", "$device_id"),
    "$anon_distinct_id on any event": ("$pageview", "$anon_distinct_id"),
}


@pytest.mark.parametrize("link", LINKS, ids=str)
@pytest.mark.parametrize("other", [ALICE, WITHDRAWN, "user-1"], ids=["alice", "refused", "guess"])
def test_a_link_to_an_id_that_is_not_the_callers_is_removed_and_the_event_kept(
    link, other, sandbox, people
):
    name, field = LINKS[link]
    event = {"event": name, "properties": {"distinct_id": BOB, field: other}}

    post(people.bob.client, batch(event))

    [forwarded] = delivered(sandbox)
    assert forwarded.distinct_id == BOB
    assert field not in forwarded.event["properties"]
    assert other not in json.dumps(forwarded.event)


def test_a_link_to_an_unbound_anonymous_id_is_kept_and_claimed(sandbox, people):
    identify = {
        "event": "$identify",
        "properties": {"distinct_id": BOB, "$anon_distinct_id": FRESH},
    }

    post(people.bob.client, batch(identify))
    post(people.alice.client, batch(pageview(FRESH)))  # now bob's: alice cannot use it

    assert received(sandbox) == [(BOB, "$identify")]
    assert delivered(sandbox)[0].event["properties"]["$anon_distinct_id"] == FRESH


# --- P22, P23, P24: a fresh envelope -----------------------------------------------------


@pytest.mark.parametrize(
    "sent_at", [1733184000, 1.5, True, {"x": 1}, ["2026-01-01"], "yesterday"], ids=repr
)
def test_fields_beside_the_batch_never_reach_posthog(sent_at, sandbox, people):
    body = {
        "api_key": TOKEN,
        "sent_at": sent_at,
        "batch": [pageview(BOB)],
        "event": "smuggled",
        "distinct_id": WITHDRAWN,
        "properties": {"distinct_id": WITHDRAWN},
        "historical_migration": True,
    }

    response = post(people.bob.client, json.dumps(body).encode())

    assert response.json() == {"status": 1}
    assert received(sandbox) == [(BOB, "$pageview")]
    forwarded = json.loads(gzip.decompress(sandbox.store.requests[-1].body))
    # No sent_at: the forwarder sends each event's time as PostHog would have computed it.
    assert set(forwarded) == {"api_key", "batch", "historical_migration"}
    assert forwarded["historical_migration"] is False


@pytest.mark.parametrize("route", ["/ph/e/", "/ph/batch/", "/ph/i/v0/e/"])
def test_nameless_objects_are_dropped(route, sandbox, people):
    engage = {
        "$set": {"email": "x@y"},
        "properties": {"distinct_id": BOB, "$anon_distinct_id": ALICE},
    }
    body = {**engage, "api_key": TOKEN}

    post(people.bob.client, json.dumps(body).encode(), route)
    post(people.bob.client, batch(engage, {**pageview(BOB), "event": ""}), route)
    post(people.bob.client, json.dumps([engage]).encode(), route)

    assert nothing_reached(sandbox)


@pytest.mark.parametrize(
    "body",
    [
        batch(pageview(BOB)).replace(TOKEN.encode(), b"phc_someone_else"),
        batch(pageview(BOB, token="phc_someone_else")),
        batch({**pageview(BOB), "token": "phc_someone_else"}),
        batch({**pageview(BOB), "api_key": 42}),
    ],
    ids=["envelope", "properties.token", "event token", "non-string token"],
)
def test_another_projects_token_is_not_relayed(body, sandbox, people, admin_client):
    response = post(people.bob.client, body)

    assert response.json() == {"status": 1}
    assert nothing_reached(sandbox)
    counts = admin_client.get("/api/v1/proxy/stats/").json()["counts"]
    assert counts["dropped.foreign_token"] >= 1


@pytest.mark.parametrize(
    "event",
    [
        {**pageview(BOB), "uuid": "not-a-uuid"},
        {**pageview(BOB), "timestamp": "last tuesday"},
        {**pageview(BOB), "timestamp": 1733184000},
        {"event": "e", "distinct_id": BOB, "properties": ["not", "an", "object"]},
        {"event": ["not", "a", "name"], "distinct_id": BOB},
        "a string",
        None,
    ],
    ids=repr,
)
def test_an_event_posthog_would_refuse_is_dropped_and_the_rest_forwarded(event, sandbox, people):
    response = post(people.bob.client, batch(event, pageview(BOB, ok=True)))

    assert response.json() == {"status": 1}
    assert [e.event["properties"].get("ok") for e in delivered(sandbox)] == [True]


@pytest.mark.parametrize("path", ["/ph/engage/", "/ph/track/", "/ph/capture/"])
def test_routes_posthog_js_does_not_use_are_refused(path, sandbox, people):
    response = post(people.bob.client, batch(pageview(BOB)), path)

    assert response.status_code == 404
    assert nothing_reached(sandbox)


# --- P25, P26: bounded parsing, invalid strings --------------------------------------------


def test_deep_nesting_is_a_fast_400(sandbox, people):
    deep = b'{"api_key": "%s", "batch": [' % TOKEN.encode() + b"[" * 60_000 + b"]" * 60_000 + b"]}"

    started = time.monotonic()
    response = post(people.bob.client, deep)

    assert response.status_code == 400
    assert response.json()["code"] == "json_too_complex"
    assert time.monotonic() - started < 1
    assert nothing_reached(sandbox)


def test_an_object_bomb_is_refused_while_parsing_with_bounded_memory(sandbox, people):
    inner = b"{}," * 3_000_000
    bomb = gzip.compress(b'{"batch": [' + inner + b"{}]}", compresslevel=9)
    assert len(bomb) < 64 * 1024

    tracemalloc.start()
    started = time.monotonic()
    try:
        response = post(people.bob.client, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert response.status_code == 400
    assert time.monotonic() - started < 1
    assert peak < 64 << 20  # the inflated body is 9 MB; its parse tree would be gigabytes
    assert nothing_reached(sandbox)


def test_a_lone_surrogate_is_replaced_and_the_batch_kept(sandbox, people):
    body = (
        b'{"api_key": "%s", "batch": [{"event": "cut\\ud83d", "properties": '
        b'{"distinct_id": "%s", "title": "caf\\udce9 \\ud800"}}, '
        b'{"event": "next", "properties": {"distinct_id": "%s", "bad": "\xff\xfe"}}]}'
    ) % (TOKEN.encode(), BOB.encode(), BOB.encode())

    response = post(people.bob.client, body)

    assert response.json() == {"status": 1}
    first, second = (e.event for e in delivered(sandbox))
    assert first["event"] == "cut\ufffd"
    assert first["properties"]["title"] == "caf\ufffd \ufffd"
    assert second["properties"]["bad"] == "\ufffd\ufffd"


def test_a_surrogate_in_an_id_is_judged_as_it_is_forwarded(sandbox, people):
    lone = json.dumps(pageview(BOB + "\ud800"))  # not bob's id, and not claimable

    post(people.bob.client, b'{"api_key": "%s", "batch": [%s]}' % (TOKEN.encode(), lone.encode()))

    assert nothing_reached(sandbox)


# --- P27: what comes back is bounded -----------------------------------------------------


@override_settings(CONSENT_PROXY_DEADLINE_SECONDS=1.0, CONSENT_PROXY_READ_TIMEOUT=5.0)
def test_an_upstream_that_drips_is_cut_at_the_deadline(sandbox, people):
    # 5 s for the whole answer at this pace
    flags = json.dumps({"distinct_id": BOB}).encode()
    with (
        misbehaving("drip", drip_seconds=0.1) as upstream,
        override_settings(POSTHOG_HOST=upstream.url),
    ):
        started = time.monotonic()
        response = post(people.bob.client, flags, "/ph/flags/?v=2")
        elapsed = time.monotonic() - started
        assert post(people.bob.client, batch(pageview(BOB))).status_code == 200  # spooled
        started = time.monotonic()
        forwarded = forward_spool()
        forwarding = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"
    assert elapsed < 1.5
    assert (forwarded.delivered, forwarded.retried) == (0, 1)  # kept for the next round
    assert forwarding < 1.5


@override_settings(CONSENT_PROXY_MAX_RESPONSE_BYTES=1 << 20)
def test_a_gzip_bomb_from_upstream_is_read_up_to_the_cap(sandbox, people):
    flags = json.dumps({"distinct_id": BOB}).encode()
    assert post(people.bob.client, batch(pageview(BOB))).status_code == 200  # spooled
    with misbehaving("bomb") as upstream, override_settings(POSTHOG_HOST=upstream.url):
        tracemalloc.start()
        try:
            response = post(people.bob.client, flags, "/ph/flags/?v=2")
            forwarded = forward_spool()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert upstream.hits == 2  # the flags request, then the forwarder's batch
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_invalid"
    assert (forwarded.delivered, forwarded.retried) == (0, 1)
    assert peak < 16 << 20  # 64 MiB once inflated


# --- P28: no consent oracle --------------------------------------------------------------


def test_the_answer_is_the_same_whatever_happened_to_the_events(sandbox, people):
    cases = [
        (people.bob.client, batch(pageview(BOB))),  # forwarded
        (people.bob.client, batch(pageview(BOB), pageview(ALICE))),  # partly dropped
        (people.bob.client, batch(pageview(ALICE))),  # someone else's
        (people.bob.client, batch(pageview(WITHDRAWN))),  # someone refused
        (people.bob.client, batch(pageview("nobody-knows-me"))),  # unknown
        (Client(), batch(pageview(ALICE))),  # no caller at all
    ]

    answers = {answer_of(post(client, body)) for client, body in cases}

    assert len(answers) == 1
    assert answers.pop()[0] == 200
