"""A host project with ATOMIC_REQUESTS (cookiecutter-django's default) wraps its views in one
transaction each; the proxy must not be: its spool write commits on its own, and a call to
PostHog would otherwise hold the transaction (on SQLite, the write lock) for its duration."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from tests.conftest import TOKEN, Visitor, anonymous_id, delivered

pytestmark = pytest.mark.django_db


def depths_during(call: Callable[[], Any]) -> list[int]:
    """How many atomic blocks were open at each SQL statement `call` ran."""
    depths: list[int] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        depths.append(len(connection.atomic_blocks))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()
    return depths


def test_the_proxy_runs_outside_a_hosts_request_transaction(sandbox, monkeypatch):
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    event = {"event": "$pageview", "properties": {"distinct_id": anonymous_id("atomic")}}
    body = json.dumps({"api_key": TOKEN, "batch": [event]})
    outside = len(connection.atomic_blocks)  # the test's own

    proxied = depths_during(lambda: visitor.client.post("/ph/e/", body, content_type="text/plain"))
    api = depths_during(visitor.consent)

    # The spool's own transaction and no request-wide one (with one, its statements ran a
    # level deeper).
    assert max(proxied) == outside + 1
    assert max(api) == outside + 1  # the setting is on: other views are wrapped
    assert [e.distinct_id for e in delivered(sandbox)] == [anonymous_id("atomic")]
