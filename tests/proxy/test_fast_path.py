"""config/wsgi.py serves /ph/ through a handler with the proxy's short middleware list."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config.wsgi import application
from tests.conftest import TOKEN, Visitor, anonymous_id, delivered

pytestmark = pytest.mark.django_db


@contextmanager
def connections_kept() -> Iterator[None]:
    """As Django's test client does: a request must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(
    path: str, method: str = "GET", body: bytes = b"", cookie: str = ""
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_COOKIE": cookie,
    }
    setup_testing_defaults(environ)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    with connections_kept():
        content = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], content


def test_proxy_requests_skip_the_site_middleware_and_still_work(sandbox):
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    cookie = "; ".join(f"{k}={v.value}" for k, v in visitor.client.cookies.items())
    event = {"event": "$pageview", "properties": {"distinct_id": anonymous_id("fast")}}
    body = json.dumps({"api_key": TOKEN, "batch": [event]}).encode()

    status, headers, content = call("/ph/e/", "POST", body, cookie)

    assert (status, json.loads(content)) == ("200 OK", {"status": 1})
    assert "X-Request-ID" in headers  # the one middleware the proxy keeps
    assert "X-Frame-Options" not in headers and "Vary" not in headers  # no site middleware
    assert [e.distinct_id for e in delivered(sandbox)] == [anonymous_id("fast")]


def test_other_paths_keep_the_site_middleware():
    status, headers, _ = call("/api/v1/consent/")

    assert status == "200 OK"
    assert headers["X-Frame-Options"] == "DENY"
    assert "X-Request-ID" in headers
