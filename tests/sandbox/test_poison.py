"""An event fault: PostHog refusing, with a 400, every capture request whose batch holds one
event it cannot process. Requests without that event are answered normally, so a forwarder
that splits the batch can deliver the rest."""

from __future__ import annotations

import json

import pytest

from tests.sandbox.payloads import batch_body, event

REFUSED = {"status": 400, "code": "invalid_event", "error": "invalid event could not be processed"}


def post(client, *names: str, route: str = "/batch/"):
    return client.post(route, content=batch_body(*[event(name, "u1") for name in names]))


def stored(server) -> list[str]:
    return [captured.event["event"] for captured in server.store.events]


def test_a_batch_holding_the_poison_is_refused_whole(server, client):
    server.faults.poison("bad")

    response = post(client, "good", "bad", "good")

    assert response.status_code == 400
    assert response.json() == REFUSED
    assert stored(server) == []
    assert server.persons.all() == []
    assert [request.status for request in server.store.requests] == [400]


def test_splitting_the_batch_delivers_the_rest(server, client):
    server.faults.poison("bad")

    statuses = [
        post(client, *names).status_code for names in (["a", "bad", "b"], ["a"], ["bad"], ["b"])
    ]

    assert statuses == [400, 200, 400, 200]
    assert stored(server) == ["a", "b"]


def test_the_poison_lasts_until_cleared(server, client):
    server.faults.poison("bad")

    assert [post(client, "bad").status_code for _ in range(3)] == [400, 400, 400]
    assert server.faults.clear() == 1
    assert post(client, "bad").status_code == 200


def test_times_counts_only_requests_holding_the_event(server, client):
    server.faults.add(400, times=2, event_name="bad")

    statuses = [post(client, name).status_code for name in ("ok", "bad", "ok", "bad", "bad")]

    assert statuses == [200, 400, 200, 400, 200]
    assert server.faults.pending == []


def test_the_path_prefix_limits_the_poison(server, client):
    server.faults.poison("bad", path_prefix="/batch")

    assert post(client, "bad", route="/i/v0/e/").status_code == 200
    assert post(client, "bad", route="/batch/").status_code == 400


def test_other_requests_leave_the_poison_untouched(server, client):
    server.faults.poison("bad", times=1)

    assert client.get("/_liveness").status_code == 200
    assert post(client, "fine").status_code == 200
    assert [fault.times for fault in server.faults.pending] == [1]


def test_a_request_malformed_anyway_gets_its_own_error(server, client):
    server.faults.poison("bad", times=1)
    body = batch_body(event("bad", "u1"), event("other", None))

    response = client.post("/batch/", content=body)

    assert response.json()["code"] == "missing_distinct_id"
    assert len(server.faults.pending) == 1


def test_path_faults_still_apply_to_every_request(server, client):
    server.faults.poison("bad")
    server.faults.add(503, times=1)

    assert post(client, "bad").status_code == 503
    assert post(client, "bad").status_code == 400


def test_the_poison_over_http(server, client):
    spec = {"status": 400, "event_name": "bad", "times": None, "path_prefix": "/"}

    created = client.post("/_sandbox/faults", json=spec)

    assert created.status_code == 201
    assert created.json()["event_name"] == "bad"
    assert client.get("/_sandbox/faults").json()[0]["event_name"] == "bad"
    assert post(client, "bad", route="/e/").json() == REFUSED
    assert post(client, "good", route="/e/").status_code == 200
    assert client.delete("/_sandbox/faults").json() == {"cleared": 1}
    assert post(client, "bad", route="/e/").status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event_name": ""},
        {"event_name": "bad", "status": None, "latency_ms": 10},
        {"event_name": "bad", "drop": True},
        {"event_name": "bad", "latency_ms": 10},
    ],
)
def test_invalid_event_faults_are_refused(server, kwargs):
    with pytest.raises(ValueError):
        server.faults.add(**{"status": 400, **kwargs})


@pytest.mark.parametrize("event_name", ["", 5, ["bad"]])
def test_bad_event_fault_specs_over_http_are_400(server, client, event_name):
    spec = {"status": 400, "event_name": event_name}

    response = client.post("/_sandbox/faults", content=json.dumps(spec))

    assert response.status_code == 400
    assert server.faults.pending == []
