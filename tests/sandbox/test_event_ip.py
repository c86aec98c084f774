"""The IP PostHog records for an event (PROTOCOL 3.4): a client-supplied `$ip`, else the
request's IP as legacy capture reads it (leftmost X-Forwarded-For, then X-Real-Ip, then the
socket peer)."""

from __future__ import annotations

import httpx
import pytest

from consent_service.sandbox.server import SandboxServer
from tests.sandbox.payloads import batch_body, event


def stored_ip(
    server: SandboxServer, client: httpx.Client, headers: dict[str, str], **properties: object
) -> str | None:
    response = client.post(
        "/batch/", content=batch_body(event("e", "u1", **properties)), headers=headers
    )
    assert response.status_code == 200, response.text
    [stored] = server.store.events
    return stored.ip


def test_without_forwarding_headers_the_socket_peer_is_recorded(server, client):
    assert stored_ip(server, client, {}) == "127.0.0.1"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"),
        ({"X-Forwarded-For": "203.0.113.9, 10.0.0.1, 10.0.0.2"}, "203.0.113.9"),
        ({"X-Forwarded-For": "203.0.113.9 ,10.0.0.1"}, "203.0.113.9"),
        ({"X-Real-Ip": "198.51.100.7"}, "198.51.100.7"),
        ({"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "198.51.100.7"}, "203.0.113.9"),
        ({"X-Forwarded-For": "2001:DB8:0::1"}, "2001:db8::1"),
        # Values that are no address are skipped, as the extractor skips them.
        ({"X-Forwarded-For": "unknown, 203.0.113.9"}, "203.0.113.9"),
        ({"X-Forwarded-For": "unknown", "X-Real-Ip": "198.51.100.7"}, "198.51.100.7"),
        ({"X-Forwarded-For": "unknown", "X-Real-Ip": "nope"}, "127.0.0.1"),
    ],
)
def test_the_request_ip_is_read_as_capture_reads_it(server, client, headers, expected):
    assert stored_ip(server, client, headers) == expected


def test_a_client_supplied_ip_is_kept(server, client):
    headers = {"X-Forwarded-For": "203.0.113.9"}

    assert stored_ip(server, client, headers, **{"$ip": "192.0.2.44"}) == "192.0.2.44"


def test_each_event_keeps_its_own_ip(server, client):
    body = batch_body(event("a", "u1", **{"$ip": "192.0.2.44"}), event("b", "u1"))

    client.post("/i/v0/e/", content=body, headers={"X-Forwarded-For": "203.0.113.9"})

    assert [stored.ip for stored in server.store.events] == ["192.0.2.44", "203.0.113.9"]


def test_the_inspection_api_shows_the_ip(server, client):
    client.post("/batch/", content=batch_body(event("e", "u1")), headers={"X-Real-Ip": "::1"})

    [stored] = client.get("/_sandbox/events.json").json()

    assert stored["ip"] == "::1"
