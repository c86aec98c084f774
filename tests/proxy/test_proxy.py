from __future__ import annotations

import gzip
import json

import pytest

from consent_service.ledger.models import SubjectIdentifier
from consent_service.sandbox.server import SandboxServer
from tests.conftest import Visitor
from tests.fixtures.captures import Capture, load_captures

pytestmark = pytest.mark.django_db

PROXIED = [c for c in load_captures() if c.method == "POST" and c.path != "/i/v1/analytics/events"]
EVENT_CAPTURES = [c for c in PROXIED if not c.is_flags]
FLAG_CAPTURES = [c for c in PROXIED if c.is_flags]


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
def test_a_consented_visitors_events_reach_posthog_unchanged(capture, sandbox, make_visitor):
    visitor = consenting(make_visitor)

    response = send(visitor, capture)

    assert response.status_code == 200, response.content
    assert [e.event for e in sandbox.store.events] == capture.events


@pytest.mark.parametrize("capture", EVENT_CAPTURES, ids=lambda c: c.name)
def test_a_refusing_visitors_events_never_leave(capture, sandbox, make_visitor):
    visitor = consenting(make_visitor, analytics=False, session_replay=False)

    response = send(visitor, capture)

    assert response.status_code == 200
    assert response.json() == {"status": 1}  # posthog-js must not retry
    assert "no_consent=" in response["X-Consent-Dropped"]
    assert sandbox.store.requests == []


@pytest.mark.parametrize("capture", EVENT_CAPTURES, ids=lambda c: c.name)
def test_a_visitor_who_never_decided_sends_nothing(capture, sandbox, make_visitor):
    visitor = make_visitor()
    visitor.config()

    assert send(visitor, capture).status_code == 200
    assert sandbox.store.requests == []


@pytest.mark.parametrize("capture", FLAG_CAPTURES, ids=lambda c: c.name)
def test_flags_without_consent_are_answered_locally(capture, sandbox, make_visitor):
    visitor = make_visitor()
    visitor.config()

    response = send(visitor, capture)

    assert response.status_code == 200
    assert response.json()["flags"] == {}
    assert sandbox.store.requests == []


@pytest.mark.parametrize("capture", FLAG_CAPTURES[:3], ids=lambda c: c.name)
def test_flags_with_consent_come_from_posthog(capture, sandbox, make_visitor):
    visitor = consenting(make_visitor)

    response = send(visitor, capture)

    assert response.status_code == 200
    assert "demo-flag" in response.json()["flags"]
    forwarded = sandbox.store.requests[-1]
    assert json.loads(forwarded.body) == capture.decoded


def test_replay_needs_session_replay_consent(sandbox, make_visitor):
    recording = next(c for c in EVENT_CAPTURES if c.path == "/s/")
    visitor = consenting(make_visitor, session_replay=False)

    response = send(visitor, recording)

    assert "no_replay_consent=" in response["X-Consent-Dropped"]
    assert sandbox.store.events == []


def test_the_clients_bytes_are_never_relayed(sandbox, make_visitor):
    capture = next(c for c in EVENT_CAPTURES if c.query)  # base64 form beacon
    visitor = consenting(make_visitor)

    send(visitor, capture)

    forwarded = sandbox.store.requests[-1]
    assert forwarded.body != capture.body
    assert forwarded.query == ""  # compression=base64 no longer describes the body
    assert json.loads(gzip.decompress(forwarded.body))["batch"] == capture.events


def test_consented_ids_are_bound_for_erasure(sandbox, make_visitor):
    capture = next(c for c in EVENT_CAPTURES if c.run == "js/default" and c.number == 12)
    visitor = consenting(make_visitor)

    send(visitor, capture)

    bound = set(
        SubjectIdentifier.objects.filter(kind="distinct_id").values_list("value", flat=True)
    )
    assert {"user-1", "01a21f7b-5f17-74f3-b340-499214275eb4"} <= bound


def test_a_withdrawal_between_two_requests_takes_effect_at_once(sandbox, make_visitor):
    capture = EVENT_CAPTURES[0]
    visitor = consenting(make_visitor)
    send(visitor, capture)
    assert len(sandbox.store.events) == len(capture.events)

    visitor.withdraw()
    response = send(visitor, capture)

    assert response.json() == {"status": 1}
    assert len(sandbox.store.events) == len(capture.events)


def test_ids_of_a_withdrawn_visitor_stay_refused_after_a_new_grant(sandbox, make_visitor):
    capture = EVENT_CAPTURES[0]
    visitor = consenting(make_visitor)
    send(visitor, capture)
    visitor.withdraw()

    consenting_again = visitor.decide({"analytics": True, "session_replay": True})
    response = send(visitor, capture)

    assert consenting_again.status_code == 201
    assert "refused_id=" in response["X-Consent-Dropped"]
    assert len(sandbox.store.events) == len(capture.events)


def test_the_proxy_makes_no_database_query_for_a_returning_visitor(
    sandbox, make_visitor, django_assert_num_queries, django_capture_on_commit_callbacks
):
    capture = EVENT_CAPTURES[0]
    visitor = consenting(make_visitor)
    with django_capture_on_commit_callbacks(execute=True):
        send(visitor, capture)  # binds the ids; the commit re-fills the cache

    with django_assert_num_queries(0):
        response = send(visitor, capture)

    assert response.status_code == 200
    assert len(sandbox.store.events) == 2 * len(capture.events)


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
