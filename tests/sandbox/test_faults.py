from __future__ import annotations

import time

import httpx
import pytest

from consent_service.sandbox.store import CapturedEvent, Store
from tests.sandbox.payloads import batch_body, event


def test_status_fault_counts_down(server, client):
    server.faults.add(503, times=3, retry_after="2")

    answers = [client.post("/e/", content=batch_body(event("e", "u1"))) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [503, 503, 503, 200]
    assert answers[0].headers["retry-after"] == "2"
    assert answers[0].json() == {
        "status": 503,
        "code": "service_unavailable",
        "error": "Injected by the sandbox.",
    }
    assert "retry-after" not in answers[3].headers
    assert len(server.store.events) == 1
    assert [request.status for request in server.store.requests] == [503, 503, 503, 200]


def test_http_date_retry_after_is_passed_through(server, client):
    server.faults.add(429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")

    response = client.get("/flags/")

    assert response.headers["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"


def test_latency_without_status_delays_a_normal_answer(server, client):
    server.faults.add(None, latency_ms=300)

    started = time.monotonic()
    response = client.post("/e/", content=batch_body(event("e", "u1")))

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


def test_a_request_delayed_past_a_reset_leaves_no_trace(server, client):
    server.faults.add(None, latency_ms=300)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/e/", content=batch_body(event("late", "u1")), timeout=0.1)

    server.reset()
    time.sleep(0.5)  # the handler has now answered into the closed connection

    assert server.store.events == server.store.requests == server.persons.all() == []


def test_drop_resets_the_connection(server, client):
    server.faults.add(drop=True)

    with pytest.raises(httpx.TransportError):
        client.post("/e/", content=batch_body(event("e", "u1")))

    assert client.post("/e/", content=batch_body(event("e", "u1"))).status_code == 200
    assert [request.status for request in server.store.requests] == [0, 200]


def test_path_prefix_limits_the_fault(server, client):
    server.faults.add(500, path_prefix="/batch")

    assert client.get("/_liveness").status_code == 200
    assert client.post("/batch/", content=b"{}").status_code == 500


def test_faults_never_hit_the_control_plane(server, client):
    server.faults.add(500, times=None)

    assert client.get("/_sandbox/events.json").status_code == 200
    assert client.delete("/_sandbox/faults").json() == {"cleared": 1}
    assert client.get("/_liveness").status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [{"status": 99}, {"times": 0}, {"latency_ms": -1}, {"path_prefix": "batch"}],
)
def test_invalid_faults_are_refused(server, kwargs):
    with pytest.raises(ValueError):
        server.faults.add(**kwargs)


def test_faults_over_http(server, client):
    spec = {"status": 429, "times": 2, "retry_after": "1", "path_prefix": "/e"}

    created = client.post("/_sandbox/faults", json=spec)

    assert created.status_code == 201
    assert created.json()["times"] == 2
    assert client.get("/_sandbox/faults").json()[0]["status"] == 429
    assert client.post("/e/", content=b"{}").status_code == 429
    assert client.delete("/_sandbox/faults").json() == {"cleared": 1}
    assert client.post("/e/", content=batch_body(event("e", "u1"))).status_code == 200


@pytest.mark.parametrize("body", [b"[]", b"{nope", b'{"colour": "red"}', b'{"status": "503"}'])
def test_bad_fault_specs_are_400(client, body):
    assert client.post("/_sandbox/faults", content=body).status_code == 400


def test_inspection_endpoints(server, client, api):
    client.post("/e/", content=batch_body(event("e", "u1")), headers={"X-Test": "yes"})

    [stored] = client.get("/_sandbox/events.json").json()
    assert (stored["route"], stored["distinct_id"], stored["event"]["event"]) == ("/e/", "u1", "e")
    assert stored["headers"]["x-test"] == "yes"
    assert stored["personless"] is False
    assert client.get("/_sandbox/events.json", params={"distinct_id": "u2"}).json() == []
    [request] = client.get("/_sandbox/requests.json").json()
    assert (request["method"], request["path"], request["status"]) == ("POST", "/e/", 200)
    persons = client.get("/_sandbox/persons.json").json()
    assert persons["persons"][0]["distinct_ids"] == ["u1"]
    api.post("/api/projects/1/persons/bulk_delete/", json={"distinct_ids": ["u1"]})
    assert client.get("/_sandbox/persons.json").json()["deletions"][0]["how"] == "bulk_delete"

    assert client.post("/_sandbox/reset").status_code == 200
    assert server.store.events == server.store.requests == server.persons.all() == []


def test_dashboard_escapes_client_data(client):
    hostile = "<script>alert(1)</script>"
    body = batch_body(event(hostile, f"{hostile}-id"))
    client.post("/e/", content=body, headers={"X-Evil": hostile})

    page = client.get("/_sandbox/")

    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<script>" not in page.text
    assert page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4


def test_unknown_paths_are_404_json(client):
    for path in ("/nowhere", "/_sandbox/nowhere", "/array/phc/other"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"


def test_store_caps_drop_the_oldest():
    store = Store(max_events=2)
    store.add_events([CapturedEvent("/e/", {"event": str(n)}, "u1", {}) for n in range(3)])

    assert [stored.event["event"] for stored in store.events] == ["1", "2"]
