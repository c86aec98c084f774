"""Persons as PostHog keeps them under `person_profiles: identified_only` (RELIABILITY J15).

posthog-js marks anonymous events `$process_person_profile: false`; ingestion then creates no
person for them and gives them the deterministic id of a person that does not exist
(plugin-server `PersonEventProcessor.handlePersonlessMode`). Event deletion is keyed by
person, so deleting persons leaves those events in place.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.payloads import PERSONS, event, person_for

ANON = "01a21f7b-5f17-74f3-b340-499214275eb4"


def anonymous(name: str, **properties: Any) -> dict[str, Any]:
    return event(name, ANON, **{"$process_person_profile": False, **properties})


def identified(name: str, distinct_id: str = "user-1", **properties: Any) -> dict[str, Any]:
    return event(name, distinct_id, **{"$process_person_profile": True, **properties})


def identify(distinct_id: str = "user-1") -> dict[str, Any]:
    return identified("$identify", distinct_id, **{"$anon_distinct_id": ANON})


def names(server, distinct_id: str) -> list[str]:
    return [captured.event["event"] for captured in server.store.events_for(distinct_id)]


def test_a_personless_event_creates_no_person(server, api, capture):
    capture(anonymous("$pageview", **{"$set": {"plan": "pro"}}))

    assert person_for(api, ANON) is None  # GET persons?distinct_id= -> results: []
    assert api.get(PERSONS).json()["results"] == []
    [stored] = server.store.events
    assert (stored.distinct_id, stored.personless) == (ANON, True)
    assert api.get("/_sandbox/events.json").json()[0]["personless"] is True


@pytest.mark.parametrize("flag", [True, None, "false", 0])
def test_only_a_boolean_false_turns_person_processing_off(server, api, capture, flag):
    properties = {} if flag is None else {"$process_person_profile": flag}

    capture(event("$pageview", ANON, **properties))

    assert person_for(api, ANON) is not None
    assert server.store.events[0].personless is False


def test_identify_creates_the_person_without_taking_earlier_personless_events(server, api, capture):
    capture(anonymous("before"))

    capture(identify(), identified("after"))

    person = person_for(api, "user-1")
    assert set(person["distinct_ids"]) == {"user-1", ANON}
    assert person["is_identified"] is True
    assert [e.personless for e in server.store.events] == [True, False, False]


def test_a_personless_event_of_an_id_with_a_person_is_attached_to_it(server, api, capture):
    capture(identify(), anonymous("later", **{"$set": {"plan": "pro"}}))

    assert server.store.events[-1].personless is False
    assert person_for(api, ANON)["properties"] == {}  # no property update, though


@pytest.mark.parametrize(
    "name", ["$identify", "$create_alias", "$merge_dangerously", "$groupidentify"]
)
def test_person_events_marked_personless_are_dropped_at_ingestion(server, api, client, name):
    body = event(name, "user-1", **{"$process_person_profile": False, "$anon_distinct_id": ANON})

    response = client.post("/i/v0/e/", json=[body])

    assert response.status_code == 200  # capture takes it; ingestion drops it
    assert server.store.events == []
    assert person_for(api, "user-1") is None
    assert person_for(api, ANON) is None


def test_bulk_delete_leaves_the_personless_events_of_the_same_ids(server, api, capture):
    capture(anonymous("before"), anonymous("also-before"))
    capture(identify(), identified("after"))

    body = {"distinct_ids": ["user-1", ANON], "delete_events": True}
    response = api.post(f"{PERSONS}bulk_delete/", json=body)

    assert response.status_code == 202
    assert response.json()["persons_deleted"] == 1
    assert names(server, ANON) == ["before", "also-before"]
    assert names(server, "user-1") == []
    assert person_for(api, ANON) is None


def test_delete_by_uuid_leaves_them_too(server, api, capture):
    capture(anonymous("before"), identify())
    person = person_for(api, "user-1")

    assert api.delete(f"{PERSONS}{person['uuid']}/?delete_events=true").status_code == 202

    assert names(server, ANON) == ["before"]
    assert names(server, "user-1") == []


def test_an_anonymous_visitor_has_nothing_to_delete(server, api, capture):
    capture(anonymous("$pageview"), anonymous("$pageleave"))

    response = api.post(f"{PERSONS}bulk_delete/", json={"distinct_ids": [ANON]})

    assert response.json()["persons_found"] == 0
    assert len(server.store.events_for(ANON)) == 2


def test_recordings_touch_no_person_and_go_by_distinct_id(server, api, client, capture):
    snapshot = event("$snapshot", ANON, **{"$session_id": "s1", "$snapshot_data": []})
    assert client.post("/s/", json=[snapshot]).status_code == 200
    assert person_for(api, ANON) is None

    capture(identify())
    person = person_for(api, ANON)
    api.delete(f"{PERSONS}{person['uuid']}/", params={"delete_recordings": ""})

    assert server.store.events_for(ANON) == []
