"""Real clients over real sockets: posthog-python and a raw socket against a live server."""

from __future__ import annotations

import socket

import pytest
from posthog import Posthog
from posthog import request as posthog_request

from tests.conftest import TOKEN, Visitor

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("flushable_ledger", "ledger_defaults"),
]


def bind_consent(distinct_id: str, analytics: bool) -> None:
    """A browser decided, telling us its PostHog distinct_id."""
    response = Visitor().decide(
        {"analytics": analytics, "session_replay": False}, distinct_id=distinct_id
    )
    assert response.status_code == 201


def test_posthog_python_events_pass_only_for_consented_distinct_ids(sandbox, live_server):
    bind_consent("user-consented", analytics=True)
    bind_consent("user-refused", analytics=False)
    client = Posthog(TOKEN, host=f"{live_server.url}/ph", sync_mode=True, max_retries=0)
    try:
        for distinct_id in ("user-consented", "user-refused", "user-unknown"):
            client.capture("order_paid", distinct_id=distinct_id, properties={"plan": "pro"})
            client.set(distinct_id=distinct_id, properties={"email": f"{distinct_id}@x"})
        client.flush()
    finally:
        client.shutdown()
        # The SDK keeps one module-level keep-alive session; while it is open a live-server
        # thread holds a database connection and PostgreSQL cannot drop the test database.
        posthog_request._session.close()

    received = [(e.distinct_id, e.event["event"]) for e in sandbox.store.events]
    assert received == [("user-consented", "order_paid"), ("user-consented", "$set")]
    assert sandbox.store.events[0].event["properties"]["plan"] == "pro"


def test_a_body_cut_short_by_the_client_is_a_400(sandbox, live_server):
    host, port = live_server.url.removeprefix("http://").split(":")
    head = (
        "POST /ph/e/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        "Content-Length: 1000\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head.encode() + b'{"batch": [')
        conn.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: conn.recv(4096), b"")).decode(errors="replace")

    assert answer.startswith("HTTP/1.1 400")
    assert "truncated_body" in answer
    assert sandbox.store.requests == []
