"""The authenticated server route for backend SDKs: posthog-python's captures replayed through
it, and the real SDK against a live server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.test import override_settings
from posthog import Posthog
from posthog import request as posthog_request

from consent_service.ledger.distinct_ids import distinct_ids_bind
from consent_service.ledger.models import SubjectIdentifier
from tests.conftest import TOKEN, Visitor, delivered, nothing_reached
from tests.fixtures.captures import Capture, load_captures

SECRET = "s3cret-path-segment-0123456789"
SERVER = f"/ph/server/{SECRET}"
PYTHON = {c.name: c for c in load_captures() if c.run.startswith("python/")}
CONSENTED, REFUSED, WITHDRAWN = "user-123", "user-456", "anon-xyz"


@pytest.fixture(autouse=True)
def server_route() -> Iterator[None]:
    with override_settings(CONSENT_PROXY_SERVER_SECRET=SECRET):
        yield


def subject_with(distinct_id: str, *, analytics: bool) -> Visitor:
    """A person who decided in the browser; the backend knows them by `distinct_id`."""
    visitor = Visitor()
    assert visitor.decide({"analytics": analytics, "session_replay": False}).status_code == 201
    identifier = SubjectIdentifier.objects.filter(kind="visitor").latest("id")
    distinct_ids_bind(subject_id=identifier.subject_id, distinct_ids=[distinct_id])
    return visitor


def replay(client, capture: Capture, path: str | None = None):
    url = (path or SERVER) + capture.path + (f"?{capture.query}" if capture.query else "")
    headers = {"Content-Encoding": capture.header("Content-Encoding")}
    return client.post(url, capture.body, content_type="application/json", headers=headers)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["python/v0#1", "python/v0gzip#1", "python/flags#4"])
def test_each_event_is_judged_by_the_consent_of_its_own_subject(name, sandbox, client):
    subject_with(CONSENTED, analytics=True)
    subject_with(REFUSED, analytics=False)
    withdrawn = subject_with(WITHDRAWN, analytics=True)
    withdrawn.withdraw()

    response = replay(client, PYTHON[name])

    assert response.status_code == 200
    assert response.json() == {"status": 1}
    capture = PYTHON[name]
    expected = [e["event"] for e in capture.events if e["distinct_id"] == CONSENTED]
    assert [(e.distinct_id, e.event["event"]) for e in delivered(sandbox)] == [
        (CONSENTED, name) for name in expected
    ]


@pytest.mark.django_db
def test_an_alias_to_another_persons_id_loses_the_alias(sandbox, client):
    subject_with(CONSENTED, analytics=True)
    subject_with("anon-other", analytics=True)
    properties = {"alias": "anon-other"}
    alias = {"event": "$create_alias", "distinct_id": CONSENTED, "properties": properties}

    response = client.post(
        f"{SERVER}/batch/", {"api_key": TOKEN, "batch": [alias]}, content_type="application/json"
    )

    assert response.status_code == 200
    properties = delivered(sandbox)[0].event["properties"]
    assert properties == {
        "distinct_id": CONSENTED,
        "$process_person_profile": True,
        "$ip": "127.0.0.1",  # the caller's, as PostHog would have recorded it
    }


@pytest.mark.django_db
def test_flags_are_evaluated_only_for_a_consented_subject(sandbox, client):
    subject_with(CONSENTED, analytics=True)
    consented = PYTHON["python/flags#1"]
    unknown = PYTHON["python/flags#3"]  # user-456: nobody here

    assert "demo-flag" in replay(client, consented).json()["flags"]
    assert replay(client, unknown).json()["flags"] == {}
    assert len([r for r in sandbox.store.requests if r.path == "/flags/"]) == 1


@pytest.mark.django_db
def test_capture_mode_v1_is_a_400_so_the_sdk_does_not_retry(sandbox, client):
    response = replay(client, PYTHON["python/v1#1"])

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_capture_mode"
    assert nothing_reached(sandbox)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/ph/server/wrong-secret", "/ph/server/" + SECRET.upper(), "/ph/server/x/y"]
)
def test_a_wrong_secret_is_an_unknown_route(path, sandbox, client):
    subject_with(CONSENTED, analytics=True)

    response = replay(client, PYTHON["python/v0#1"], path=path)

    assert response.status_code == 404
    assert nothing_reached(sandbox)


@pytest.mark.django_db
def test_without_a_secret_there_is_no_server_route(sandbox, client):
    with override_settings(CONSENT_PROXY_SERVER_SECRET=""):
        response = replay(client, PYTHON["python/v0#1"], path="/ph/server/")

    assert response.status_code == 404


@pytest.mark.django_db
def test_cookie_less_backend_traffic_on_browser_routes_forwards_nothing(sandbox, client):
    subject_with(CONSENTED, analytics=True)

    response = replay(client, PYTHON["python/v0#1"], path="/ph")

    assert response.json() == {"status": 1}
    assert nothing_reached(sandbox)


@pytest.mark.django_db
def test_the_secret_never_appears_in_a_log_line(sandbox, client, caplog):
    with caplog.at_level(logging.INFO):
        replay(client, PYTHON["python/v1#1"])  # a 400: Django logs the path
        logging.getLogger("django.server").info('"POST %s/batch/ HTTP/1.1" 200 13', SERVER)
        logging.getLogger("gunicorn.access").info("%(r)s", {"r": f"POST {SERVER}/batch/"})

    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert "/ph/server/***/" in caplog.text


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("flushable_ledger", "ledger_defaults")
def test_posthog_python_through_the_server_route(sandbox, live_server):
    subject_with(CONSENTED, analytics=True)
    subject_with(REFUSED, analytics=False)
    client = Posthog(TOKEN, host=live_server.url + SERVER, sync_mode=True, max_retries=0)
    try:
        for distinct_id in (CONSENTED, REFUSED, "user-unknown"):
            client.capture("order_paid", distinct_id=distinct_id, properties={"plan": "pro"})
            client.set(distinct_id=distinct_id, properties={"email": f"{distinct_id}@x"})
        flags = client.get_all_flags(CONSENTED)
        client.flush()
    finally:
        client.shutdown()
        # The SDK keeps one module-level keep-alive session; while it is open a live-server
        # thread holds a database connection and PostgreSQL cannot drop the test database.
        posthog_request._session.close()

    events = delivered(sandbox)
    received = [(e.distinct_id, e.event["event"]) for e in events]
    assert received == [(CONSENTED, "order_paid"), (CONSENTED, "$set")]
    assert events[0].event["properties"]["plan"] == "pro"
    assert flags == {"demo-flag": True}
