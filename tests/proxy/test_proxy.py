from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from consent_service.ledger.distinct_ids import (
    MAX_DISTINCT_IDS_PER_SUBJECT,
    distinct_id_is_anonymous,
)
from consent_service.ledger.models import SubjectIdentifier
from consent_service.sandbox.server import SandboxServer
from tests.conftest import (
    Visitor,
    anonymous_id,
    as_sent,
    consent_caches_clear,
    delivered,
    forward_spool,
)
from tests.fixtures.captures import Capture, load_captures

pytestmark = pytest.mark.django_db

# Browser captures: posthog-python's go through the server route (test_server_route.py).
PROXIED = [c for c in load_captures() if c.method == "POST" and c.run.startswith("js/")]
EVENT_CAPTURES = [c for c in PROXIED if not c.is_flags]
FLAG_CAPTURES = [c for c in PROXIED if c.is_flags]
COOKIELESS = "$posthog_cookieless"  # a sentinel, nobody's id: never claimable
TRUSTING = override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=True)
FRESH_FIELDS = ("event", "uuid", "timestamp", "$set", "$set_once")


def as_forwarded(event: dict[str, Any]) -> dict[str, Any]:
    """A posthog-js event as the proxy rebuilds it: checked fields only, the distinct_id
    it judged both at the root and in properties (recordings: their token at the root)."""
    distinct_id = event["properties"]["distinct_id"]
    fresh = {key: event[key] for key in FRESH_FIELDS if key in event}
    properties = dict(event["properties"])
    if event["event"] == "$snapshot":
        fresh["token"] = properties["token"]
    else:
        properties["$process_person_profile"] = True  # erasable: PostHog keeps a person
    return {**fresh, "distinct_id": distinct_id, "properties": properties}


def posthog_js_ids(capture: Capture) -> set[str]:
    return {e["properties"]["distinct_id"] for e in capture.events}


def send(visitor: Visitor, capture: Capture):
    """Replay the captured request through /ph/ exactly as the client sent it."""
    url = "/ph" + capture.path + (f"?{capture.query}" if capture.query else "")
    headers = {
        k: v
        for k, v in capture.headers.items()
        if k.lower() in {"user-agent", "origin", "referer", "content-encoding"}
    }
    return visitor.client.post(
        url,
        capture.body,
        content_type=capture.header("Content-Type") or "application/octet-stream",
        headers=headers,
    )


def consenting(make_visitor, **purposes: bool) -> Visitor:
    visitor: Visitor = make_visitor()
    choices = {"analytics": True, "session_replay": True, **purposes}
    assert visitor.decide(choices).status_code == 201
    return visitor


@pytest.mark.parametrize("capture", EVENT_CAPTURES, ids=lambda c: c.name)
def test_a_consented_visitors_own_anonymous_events_reach_posthog_whole(
    capture, sandbox, make_visitor
):
    visitor = consenting(make_visitor)

    response = send(visitor, capture)

    assert response.status_code == 200, response.content
    expected = [
        as_forwarded(e)
        for e in capture.events
        if distinct_id_is_anonymous(e["properties"]["distinct_id"])
    ]
    assert [as_sent(e.event) for e in delivered(sandbox)] == [as_sent(e) for e in expected]


@pytest.mark.parametrize(
    "capture",
    [c for c in EVENT_CAPTURES if COOKIELESS not in posthog_js_ids(c)],
    ids=lambda c: c.name,
)
def test_with_the_trust_setting_client_chosen_ids_pass_too(capture, sandbox, make_visitor):
    visitor = consenting(make_visitor)

    with TRUSTING:
        response = send(visitor, capture)

    assert response.status_code == 200, response.content
    expected = [as_sent(as_forwarded(e)) for e in capture.events]
    assert [as_sent(e.event) for e in delivered(sandbox)] == expected


def test_identify_to_a_client_chosen_id_is_dropped_without_the_trust_setting(sandbox, make_visitor):
    identify = next(c for c in EVENT_CAPTURES if c.run == "js/default" and c.number == 9)
    mixed = next(c for c in EVENT_CAPTURES if c.run == "js/default" and c.number == 12)
    visitor = consenting(make_visitor)

    assert send(visitor, identify).json() == {"status": 1}
    send(visitor, mixed)

    received = [(e.event["event"], e.distinct_id) for e in delivered(sandbox)]
    assert received == [("custom_event", "01a21f7b-5f17-74f3-b340-499214275eb4")]


@pytest.mark.parametrize("capture", EVENT_CAPTURES, ids=lambda c: c.name)
def test_a_refusing_visitors_events_never_leave(capture, sandbox, make_visitor):
    visitor = consenting(make_visitor, analytics=False, session_replay=False)

    response = send(visitor, capture)

    assert response.status_code == 200
    assert response.json() == {"status": 1}  # posthog-js must not retry
    assert forward_spool().requests == 0
    assert sandbox.store.requests == []


@pytest.mark.parametrize("capture", EVENT_CAPTURES, ids=lambda c: c.name)
def test_a_visitor_who_never_decided_sends_nothing(capture, sandbox, make_visitor):
    visitor = make_visitor()
    visitor.config()

    assert send(visitor, capture).status_code == 200
    assert forward_spool().requests == 0
    assert sandbox.store.requests == []


@pytest.mark.parametrize("capture", FLAG_CAPTURES, ids=lambda c: c.name)
def test_flags_without_consent_are_answered_locally(capture, sandbox, make_visitor):
    visitor = make_visitor()
    visitor.config()

    response = send(visitor, capture)

    assert response.status_code == 200
    assert response.json()["flags"] == {}
    assert sandbox.store.requests == []


ANONYMOUS_FLAGS = [c for c in FLAG_CAPTURES if distinct_id_is_anonymous(c.decoded["distinct_id"])]


@pytest.mark.parametrize("capture", ANONYMOUS_FLAGS[:3], ids=lambda c: c.name)
def test_flags_with_consent_come_from_posthog(capture, sandbox, make_visitor):
    visitor = consenting(make_visitor)

    response = send(visitor, capture)

    assert response.status_code == 200
    assert "demo-flag" in response.json()["flags"]
    forwarded = json.loads(sandbox.store.requests[-1].body)
    assert forwarded["distinct_id"] == capture.decoded["distinct_id"]
    assert forwarded["token"] == capture.decoded["token"]
    assert set(forwarded) <= set(capture.decoded)  # rebuilt from the fields we know


def test_replay_needs_session_replay_consent(sandbox, make_visitor):
    recording = next(c for c in EVENT_CAPTURES if c.path == "/s/")
    visitor = consenting(make_visitor, session_replay=False)

    response = send(visitor, recording)

    assert response.json() == {"status": 1}
    assert sandbox.store.events == []


def test_the_clients_bytes_are_never_relayed(sandbox, make_visitor):
    capture = next(c for c in EVENT_CAPTURES if c.query)  # base64 form beacon
    visitor = consenting(make_visitor)

    send(visitor, capture)
    forward_spool()

    forwarded = sandbox.store.requests[-1]
    assert forwarded.body != capture.body
    assert forwarded.query == ""  # compression=base64 no longer describes the body
    batch = json.loads(gzip.decompress(forwarded.body))["batch"]
    assert [as_sent(e) for e in batch] == [as_sent(as_forwarded(e)) for e in capture.events]


def test_consented_ids_are_bound_for_erasure(sandbox, make_visitor):
    capture = next(c for c in EVENT_CAPTURES if c.run == "js/default" and c.number == 12)
    visitor = consenting(make_visitor)

    send(visitor, capture)

    bound = set(
        SubjectIdentifier.objects.filter(kind="distinct_id").values_list("value", flat=True)
    )
    assert bound == {"01a21f7b-5f17-74f3-b340-499214275eb4"}  # user-1 is not claimable


def test_a_withdrawal_between_two_requests_takes_effect_at_once(sandbox, make_visitor):
    capture = EVENT_CAPTURES[0]
    visitor = consenting(make_visitor)
    send(visitor, capture)
    assert len(delivered(sandbox)) == len(capture.events)

    visitor.withdraw()
    response = send(visitor, capture)

    assert response.json() == {"status": 1}
    assert len(delivered(sandbox)) == len(capture.events)


def test_ids_of_a_withdrawn_visitor_stay_refused_after_a_new_grant(sandbox, make_visitor):
    capture = EVENT_CAPTURES[0]
    visitor = consenting(make_visitor)
    send(visitor, capture)
    forward_spool()
    visitor.withdraw()

    consenting_again = visitor.decide({"analytics": True, "session_replay": True})
    response = send(visitor, capture)

    assert consenting_again.status_code == 201
    assert response.json() == {"status": 1}
    assert len(delivered(sandbox)) == len(capture.events)


def test_the_proxy_makes_one_insert_and_no_other_query_for_a_returning_visitor(
    sandbox, make_visitor, django_assert_num_queries, django_capture_on_commit_callbacks
):
    capture = EVENT_CAPTURES[0]
    visitor = consenting(make_visitor)
    with django_capture_on_commit_callbacks(execute=True):
        send(visitor, capture)  # binds the ids; the commit re-fills the cache

    with django_assert_num_queries(1) as queries:  # the spool's INSERT, nothing else
        response = send(visitor, capture)
    assert queries.captured_queries[0]["sql"].startswith("INSERT INTO spool_request")

    assert response.status_code == 200
    assert len(delivered(sandbox)) == 2 * len(capture.events)


def test_static_assets_and_remote_config_are_proxied(sandbox: SandboxServer, make_visitor):
    visitor = make_visitor()

    config = visitor.client.get("/ph/array/phc_TESTTOKEN123/config")

    assert config.status_code == 200
    assert json.loads(b"".join(config.streaming_content))["token"] == "phc_TESTTOKEN123"


def test_staff_see_what_was_dropped_and_why(sandbox, make_visitor, admin_client, client):
    visitor = consenting(make_visitor, analytics=False)
    send(visitor, EVENT_CAPTURES[0])

    counts = admin_client.get("/api/v1/proxy/stats/").json()["counts"]

    assert counts["dropped.no_consent"] == len(EVENT_CAPTURES[0].events)
    assert client.get("/api/v1/proxy/stats/").status_code == 403


def test_past_the_cap_of_live_ids_new_ids_are_dropped_and_logged_once(
    sandbox, make_visitor, caplog
):
    visitor = consenting(make_visitor)
    subject_id = SubjectIdentifier.objects.filter(kind="visitor").latest("id").subject_id
    SubjectIdentifier.objects.bulk_create(
        SubjectIdentifier(subject_id=subject_id, kind="distinct_id", value=anonymous_id(n))
        for n in range(MAX_DISTINCT_IDS_PER_SUBJECT)
    )
    consent_caches_clear()

    with caplog.at_level(logging.ERROR, logger="consent_service.ledger"):
        for n in (1000, 1001):
            event = {"event": "e", "properties": {"distinct_id": anonymous_id(n)}}
            assert post_json(visitor, event).json() == {"status": 1}
        event = {"event": "e", "properties": {"distinct_id": anonymous_id(0)}}
        post_json(visitor, event)  # an id it has: fine

    assert [e.distinct_id for e in delivered(sandbox)] == [anonymous_id(0)]
    assert len([r for r in caplog.records if "limit" in r.getMessage()]) == 1

    SubjectIdentifier.objects.filter(value=anonymous_id(5)).update(refused_at=timezone.now())
    consent_caches_clear()
    post_json(visitor, {"event": "e", "properties": {"distinct_id": anonymous_id(1000)}})

    assert delivered(sandbox)[-1].distinct_id == anonymous_id(1000)  # refused ids stop counting


def post_json(visitor: Visitor, event: dict[str, Any]) -> Any:
    return visitor.client.post("/ph/e/", json.dumps(event), content_type="text/plain")
