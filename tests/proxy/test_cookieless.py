"""Cookieless measurement on refusal (CONSENT_COOKIELESS_ON_REJECT): a visitor without an
analytics grant is measured only through posthog-js's cookieless events, rebuilt from an
allowlist, under no subject, with the real client IP PostHog's hash needs. Everything else
of theirs is dropped as before; nothing changes for a visitor who granted."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from consent_service.ledger.models import Subject
from consent_service.proxy.cookieless import ALLOWED_PROPERTIES, COOKIELESS_ID, NO_SUBJECT
from consent_service.spool.store import Entry, spool_append
from tests.conftest import TOKEN, Visitor, anonymous_id, delivered, forward_spool, nothing_reached

pytestmark = pytest.mark.django_db
ON = override_settings(CONSENT_COOKIELESS_ON_REJECT=True, CONSENT_TRUSTED_PROXIES=["127.0.0.0/8"])
CLIENT_IP = "203.0.113.7"
RECORDED = Path(__file__).resolve().parents[1] / "fixtures/posthog/js/cookieless_on_reject"
# What posthog-js 1.449.2 sent after opt_out_capturing() in cookieless on_reject mode.
PAGEVIEW = json.loads((RECORDED / "0006_POST_ph_i_v0_e_decoded.json").read_text())["batch"][0]
PERSONAL: dict[str, Any] = {
    "$device_id": anonymous_id("device"),
    "$session_id": anonymous_id("session"),
    "$window_id": anonymous_id("window"),
    "$anon_distinct_id": anonymous_id("anon"),
    "$set": {"email": "ada@example.test"},
    "$set_once": {"first_seen": "today"},
    "email": "ada@example.test",
    "title": "Inbox of ada@example.test",
    "$elements_chain": 'button:text="Pay ada"',
    "$ip": "192.0.2.1",  # a client's own claim: never believed
    "$process_person_profile": True,
}


def cookieless(name: str = "$pageview", /, **properties: Any) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(PAGEVIEW)
    event["event"] = name
    event["properties"].update(properties)
    return event


def send(visitor: Visitor, *events: dict[str, Any], path: str = "/ph/i/v0/e/") -> Any:
    body = json.dumps({"api_key": TOKEN, "batch": list(events)})
    headers = {"X-Forwarded-For": CLIENT_IP}
    response = visitor.client.post(path, body, content_type="text/plain", headers=headers)
    assert response.json() == {"status": 1}
    return response


def refused() -> Visitor:
    visitor = Visitor()
    assert visitor.decide({"analytics": False}).status_code == 201
    return visitor


def granted() -> Visitor:
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    return visitor


def sent_to_posthog(sandbox) -> list[dict[str, Any]]:
    """The events of the /batch/ bodies as the forwarder sent them (before PostHog's hash)."""
    bodies = [r.body for r in sandbox.store.requests if r.path == "/batch/"]
    return [e for body in bodies for e in json.loads(gzip.decompress(body))["batch"]]


@ON
def test_a_refused_visitors_cookieless_event_goes_with_allowlisted_properties_and_its_ip(sandbox):
    send(refused(), cookieless(**PERSONAL))

    [stored] = delivered(sandbox)
    [sent] = sent_to_posthog(sandbox)
    assert sent["distinct_id"] == sent["properties"]["distinct_id"] == COOKIELESS_ID
    assert set(sent) <= {"event", "distinct_id", "uuid", "timestamp", "properties"}
    assert set(sent["properties"]) <= {
        *ALLOWED_PROPERTIES,
        "distinct_id",
        "$ip",
        "$cookieless_mode",
        "$process_person_profile",
    }
    assert sent["properties"]["$ip"] == CLIENT_IP  # the trusted one, not the client's claim
    assert sent["properties"]["$process_person_profile"] is False
    assert sent["properties"]["$raw_user_agent"] == PAGEVIEW["properties"]["$raw_user_agent"]
    assert "ada@example.test" not in json.dumps(sent)
    # PostHog hashed the sentinel into a daily id and kept no person.
    assert stored.distinct_id.startswith(COOKIELESS_ID + "_")
    assert stored.ip == CLIENT_IP
    assert sandbox.persons.all() == []


@ON
def test_a_visitor_who_has_not_decided_is_measured_cookieless_too(sandbox):
    visitor = Visitor()
    visitor.config()  # the visitor cookie, no decision

    send(visitor, cookieless(), cookieless("demo_button"))

    assert [e.event["event"] for e in delivered(sandbox)] == ["$pageview", "demo_button"]


@ON
def test_a_refused_visitors_ordinary_events_are_still_dropped(sandbox):
    ordinary = {"event": "$pageview", "properties": {"distinct_id": anonymous_id("r")}}
    unflagged = cookieless(**{"$cookieless_mode": False})  # PostHog would make it one person

    send(refused(), ordinary, unflagged)

    assert nothing_reached(sandbox)


@ON
@pytest.mark.parametrize("name", ["$identify", "$create_alias", "$merge_dangerously", "$set"])
def test_a_cookieless_event_that_builds_a_person_is_dropped(sandbox, name):
    send(refused(), cookieless(name, **PERSONAL))

    assert nothing_reached(sandbox)


@ON
def test_a_cookieless_event_under_another_id_is_not_one(sandbox):
    event = cookieless()
    event["distinct_id"] = anonymous_id("someone")  # the top level wins, as in PostHog

    send(refused(), event)

    assert nothing_reached(sandbox)


@ON
def test_recordings_and_flags_of_a_refused_visitor_are_not_forwarded(sandbox):
    visitor = refused()
    snapshot = cookieless("$snapshot", **{"$snapshot_data": [{"type": 2}], "$session_id": "s1"})
    send(visitor, snapshot, path="/ph/s/")
    flags = {"token": TOKEN, "distinct_id": COOKIELESS_ID, "groups": {}}
    answer = visitor.client.post("/ph/flags/?v=2", json.dumps(flags), content_type="text/plain")

    assert answer.json()["flags"] == {}
    assert nothing_reached(sandbox)


def test_with_the_preset_off_a_refused_visitor_sends_nothing(sandbox):
    send(refused(), cookieless())

    assert nothing_reached(sandbox)


@ON
def test_a_visitor_who_granted_is_unaffected(sandbox):
    own = anonymous_id("granted")
    ordinary = {"event": "$pageview", "properties": {"distinct_id": own, "email": "kept"}}

    send(granted(), ordinary, cookieless())  # a cookieless straggler names nobody of theirs

    [stored] = delivered(sandbox)
    assert stored.distinct_id == own
    assert stored.event["properties"]["email"] == "kept"
    assert stored.event["properties"]["$process_person_profile"] is True  # erasable


# --- the forwarder's re-check at delivery -----------------------------------------------


def spool_directly(subject_id: int, *events: dict[str, Any]) -> None:
    entry = Entry(subject_id, json.dumps(list(events)), len(events))
    spool_append(entries=[entry], received_at=1.0e9, sent_at="", ip=CLIENT_IP)


@ON
def test_the_forwarder_sends_subjectless_events_only_as_rebuilt_cookieless_ones(sandbox):
    tampered = cookieless(**PERSONAL)
    tampered["$set"] = {"email": "ada@example.test"}
    ordinary = {"event": "x", "distinct_id": "someone", "properties": {"distinct_id": "someone"}}
    spool_directly(NO_SUBJECT, tampered, ordinary)

    result = forward_spool()

    assert (result.delivered, dict(result.dropped)) == (1, {"no_consent": 1})
    [sent] = sent_to_posthog(sandbox)
    assert "ada@example.test" not in json.dumps(sent)
    assert sent["properties"]["$ip"] == CLIENT_IP
    assert sent["properties"]["$process_person_profile"] is False


@ON
def test_the_forwarder_drops_a_cookieless_event_spooled_under_a_subject(sandbox):
    visitor = granted()
    send(visitor, {"event": "x", "properties": {"distinct_id": anonymous_id("mine")}})
    [subject_id] = Subject.objects.values_list("pk", flat=True)
    spooled = cookieless()
    spooled["distinct_id"] = COOKIELESS_ID  # as the proxy spools events: rebuilt
    spool_directly(subject_id, spooled)

    result = forward_spool()

    assert result.dropped["id_no_longer_theirs"] == 1
    assert [e.distinct_id for e in sandbox.store.events] == [anonymous_id("mine")]


def test_the_forwarder_drops_cookieless_events_once_the_preset_is_off(sandbox):
    with ON:
        send(refused(), cookieless())

    result = forward_spool()

    assert dict(result.dropped) == {"cookieless_off": 1}
    assert sandbox.store.events == []
