"""A raw socket against a live server (posthog-python: test_server_route.py)."""

from __future__ import annotations

import socket

import pytest

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("flushable_ledger", "ledger_defaults"),
]


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
