from __future__ import annotations

import uuid

import pytest

from tests.sandbox.payloads import PERSONS, event, person_for


def test_list_filters_by_exact_distinct_id(api, capture):
    capture(event("a", "user-1", **{"$set": {"email": "u1@example.com"}}), event("b", "user-10"))

    response = api.get(PERSONS, params={"distinct_id": "user-1"})

    assert response.status_code == 200
    body = response.json()
    assert (body["next"], body["previous"]) == (None, None)
    [person] = body["results"]
    assert person["type"] == "person"
    assert person["id"] == person["uuid"] == str(uuid.UUID(person["uuid"]))
    assert person["distinct_ids"] == ["user-1"]
    assert person["properties"] == {"email": "u1@example.com"}
    assert person["name"] == "u1@example.com"
    assert person["is_identified"] is False
    assert person_for(api, "user-") is None
    assert len(api.get(PERSONS).json()["results"]) == 2


def test_identify_merges_the_anonymous_person(api, capture):
    capture(event("$pageview", "anon-1", **{"$set_once": {"first_seen": "2026-01-01"}}))
    anonymous = person_for(api, "anon-1")
    identify = {
        **event("$identify", "user-1", **{"$anon_distinct_id": "anon-1"}),
        "$set": {"email": "u1@example.com"},
        "$set_once": {"first_seen": "ignored"},
    }

    capture(identify, event("after", "anon-1"))

    person = person_for(api, "user-1")
    assert person["uuid"] == anonymous["uuid"] == person_for(api, "anon-1")["uuid"]
    assert set(person["distinct_ids"]) == {"anon-1", "user-1"}
    assert person["properties"] == {"first_seen": "2026-01-01", "email": "u1@example.com"}
    assert person["is_identified"] is True


def test_identify_merges_two_existing_persons(api, capture):
    capture(event("a", "anon-1"), event("b", "user-1", **{"$set": {"plan": "pro"}}))

    capture(event("$identify", "user-1", **{"$anon_distinct_id": "anon-1"}))

    assert len(api.get(PERSONS).json()["results"]) == 1
    assert person_for(api, "anon-1")["properties"] == {"plan": "pro"}


def test_create_alias_merges(api, capture):
    capture(event("a", "anon-1"), event("$create_alias", "anon-1", alias="user-1"))

    assert person_for(api, "user-1")["uuid"] == person_for(api, "anon-1")["uuid"]


def test_delete_flags_count_by_presence(server, api, capture):
    snapshot = event("$snapshot", "user-1", **{"$session_id": "s", "$snapshot_data": []})
    capture(event("a", "user-1"), event("b", "other"))
    assert api.post("/s/", json=[snapshot]).status_code == 200
    person = person_for(api, "user-1")

    response = api.delete(f"{PERSONS}{person['uuid']}/?delete_events=false")

    assert (response.status_code, response.content) == (202, b"")
    assert person_for(api, "user-1") is None
    assert [stored.event["event"] for stored in server.store.events] == ["b", "$snapshot"]
    [deletion] = server.persons.deletions
    assert deletion["how"] == "destroy"
    assert deletion["ids"] == [person["uuid"]]
    assert deletion["flags"] == {
        "delete_events": True,
        "delete_recordings": False,
        "keep_person": False,
    }


def test_delete_without_flags_keeps_events(server, api, capture):
    capture(event("a", "user-1"))
    person = person_for(api, "user-1")

    assert api.delete(f"{PERSONS}{person['uuid']}/").status_code == 202

    assert person_for(api, "user-1") is None
    assert len(server.store.events_for("user-1")) == 1


def test_delete_recordings_removes_only_snapshots(server, api, capture):
    snapshot = event("$snapshot", "user-1", **{"$session_id": "s", "$snapshot_data": []})
    capture(event("a", "user-1"))
    api.post("/s/", json=[snapshot])
    person = person_for(api, "user-1")

    api.delete(f"{PERSONS}{person['uuid']}/", params={"delete_recordings": ""})

    assert [stored.route for stored in server.store.events] == ["/batch/"]


def test_delete_by_integer_id(api, server, capture):
    capture(event("a", "user-1"))
    person = server.persons.find("user-1")

    assert api.delete(f"{PERSONS}{person.pk}/").status_code == 202
    assert server.persons.find("user-1") is None


def test_delete_unknown_person_is_404(api):
    response = api.delete(f"{PERSONS}{uuid.uuid4()}/")

    assert response.status_code == 404
    assert response.json()["detail"] == "Person not found."


def test_delete_by_distinct_id_is_400(api, capture):
    capture(event("a", "user-1"))

    response = api.delete(f"{PERSONS}user-1/")

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert "/persons?distinct_id=user-1" in response.json()["detail"]


def test_bulk_delete_by_distinct_ids(server, api, capture):
    capture(event("a", "user-1"), event("b", "user-2"), event("c", "user-3"))

    response = api.post(
        f"{PERSONS}bulk_delete/",
        json={"distinct_ids": ["user-1", "user-2", "nobody"], "delete_events": True},
    )

    assert response.status_code == 202
    assert response.json() == {
        "persons_found": 2,
        "persons_deleted": 2,
        "events_queued_for_deletion": True,
        "recordings_queued_for_deletion": False,
        "deletion_errors": [],
    }
    assert [stored.distinct_id for stored in server.store.events] == ["user-3"]
    assert server.persons.deletions[0]["ids"] == ["user-1", "user-2", "nobody"]


def test_bulk_delete_by_person_ids(server, api, capture):
    capture(event("a", "user-1"))
    person = person_for(api, "user-1")

    response = api.post(f"{PERSONS}bulk_delete/", json={"ids": [person["uuid"]]})

    assert response.json()["persons_deleted"] == 1
    assert response.json()["events_queued_for_deletion"] is False
    assert len(server.store.events) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "You need to specify either distinct_ids or ids"),
        ({"distinct_ids": []}, "You need to specify either distinct_ids or ids"),
        ({"distinct_ids": [str(n) for n in range(1001)]}, "You can only pass 1000 distinct_ids"),
        ({"ids": [str(uuid.uuid4()) for _ in range(1001)]}, "You can only pass 1000 ids"),
        ({"distinct_ids": ["a"], "ids": [str(uuid.uuid4())]}, "not both"),
        ({"distinct_ids": "a"}, "must be a list"),
    ],
)
def test_bulk_delete_refuses_bad_bodies(api, body, message):
    response = api.post(f"{PERSONS}bulk_delete/", json=body)

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_bulk_delete_accepts_exactly_1000(api):
    body = {"distinct_ids": [str(n) for n in range(1000)]}

    assert api.post(f"{PERSONS}bulk_delete/", json=body).status_code == 202


@pytest.mark.parametrize("action", ["delete_events", "delete_recordings"])
def test_person_actions_keep_the_person(server, api, capture, action):
    capture(event("a", "user-1"))
    person = person_for(api, "user-1")

    response = api.post(f"{PERSONS}{person['uuid']}/{action}/")

    assert response.status_code == 202
    assert person_for(api, "user-1") is not None
    assert len(server.store.events) == (0 if action == "delete_events" else 1)
    assert server.persons.deletions[-1]["how"] == action


def test_missing_key_is_401(client):
    response = client.get(PERSONS)

    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"
    assert response.json()["code"] == "not_authenticated"


def test_wrong_key_is_401(client):
    response = client.get(PERSONS, headers={"Authorization": "Bearer phx_wrong"})

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_key_in_query_or_body_is_accepted(client):
    assert client.get(PERSONS, params={"personal_api_key": "phx_sandbox"}).status_code == 200
    body = {"personal_api_key": "phx_sandbox", "distinct_ids": ["x"]}
    assert client.post(f"{PERSONS}bulk_delete/", json=body).status_code == 202


def test_another_project_is_404_as_posthog_hides_projects_you_cannot_see(api):
    response = api.get("/api/projects/2/persons/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/api/environments/1/persons/", "/api/projects/@current/persons", PERSONS]
)
def test_path_aliases(api, path):
    assert api.get(path).status_code == 200


def test_wrong_method_is_405(api):
    assert api.post(PERSONS, json={}).status_code == 405


def test_throttle_fault_answers_drf_style_with_retry_after(server, api):
    server.faults.add(429, retry_after="7", path_prefix="/api/")

    response = api.delete(f"{PERSONS}{uuid.uuid4()}/")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["type"] == "throttled_error"
    assert "7 seconds" in response.json()["detail"]
    assert api.delete(f"{PERSONS}{uuid.uuid4()}/").status_code == 404
