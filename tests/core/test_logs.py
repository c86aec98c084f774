"""Log lines (consent_service/core/logs.py): the two formats, the request line, the request
id on every record, and what never gets into a line (client address, query string, the
server route's secret, user ids)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from consent_service.core.logs import (
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    log_context,
    log_hash,
)
from consent_service.core.middleware import RequestIdMiddleware
from consent_service.erasure.models import ErasureRequest
from tests.conftest import TOKEN, Visitor
from tests.erasure.helpers import PAGEVIEW, tracked_visitor

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-server-route-segment-42"
CLIENT_IP, FORWARDED_IP = "203.0.113.7", "198.51.100.9"

Lines = Callable[[], list[dict[str, Any]]]


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord(
        "consent_service.test", logging.WARNING, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """Every record the root logger gets from now on, as the JSON handler writes it; each
    written line must parse on its own."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "consent_service.request"]


# --- the formats -------------------------------------------------------------------------


def test_a_json_line_has_the_fields_and_a_traceback_as_one_field():
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        made = record("failed for %s", "reasons", count=3, ratio=0.5)
        made.exc_info = sys.exc_info()

    with log_context("round-1"):
        line = JsonFormatter().format(made)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "WARNING",
        "consent_service.test",
        "failed for reasons",
    )
    assert (entry["request_id"], entry["count"], entry["ratio"]) == ("round-1", 3, 0.5)
    assert entry["exc_info"].startswith("Traceback")
    assert "ValueError: broken\nacross lines" in entry["exc_info"]


def test_a_json_line_leaves_out_djangos_request_object():
    request = RequestFactory().get(f"/ph/server/{SECRET}/batch/?email=ada@example.com")

    entry = json.loads(
        JsonFormatter().format(record("Not Found", request=request, status_code=404))
    )

    assert "request" not in entry
    assert entry["status_code"] == 404
    assert entry["request_id"] is None


def test_text_is_the_default_format_and_one_readable_line():
    handlers: Any = settings.LOGGING["handlers"]
    assert handlers["console"]["formatter"] == "text"
    assert "LOG_FORMAT" not in os.environ

    with log_context("abc123"):
        line = TextFormatter().format(record("GET %s 200", "/healthz\nFORGED 500"))

    assert line.endswith(
        " WARNING consent_service.test GET /healthz\\nFORGED 500 200 request_id=abc123"
    )
    assert "\n" not in line


def run_settings(log_format: str) -> subprocess.CompletedProcess[str]:
    code = "import config.settings as s; print(s.LOGGING['handlers']['console']['formatter'])"
    env = {**os.environ, "LOG_FORMAT": log_format, "DJANGO_SECRET_KEY": "x" * 50}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_log_format_json_turns_on_the_json_formatter():
    done = run_settings("JSON")

    assert (done.returncode, done.stdout.strip()) == (0, "json")


def test_an_unknown_log_format_stops_the_start_with_a_clear_message():
    done = run_settings("xml")

    assert done.returncode != 0
    assert "ImproperlyConfigured: LOG_FORMAT must be 'text' or 'json', got 'xml'." in done.stderr


# --- the request line ----------------------------------------------------------------------


@pytest.mark.django_db
def test_each_request_logs_one_line_with_method_path_status_and_duration(client, json_lines):
    response = client.get("/healthz", {"email": "ada@example.com"})

    [line] = request_lines(json_lines())
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"  # no query string
    assert line["status"] == response.status_code == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == response["X-Request-ID"]
    assert line["message"] == f"GET /healthz 200 {line['duration_ms']:.1f}ms"
    assert "ada@example.com" not in json.dumps(json_lines())


@pytest.mark.django_db
@override_settings(CONSENT_PROXY_SERVER_SECRET=SECRET)
def test_the_server_route_secret_is_masked_in_our_line_and_in_djangos_warning(
    client, json_lines, caplog
):
    refused = client.post(
        f"/ph/server/{SECRET}/i/v1/analytics/events?v=1", b"{}", content_type="application/json"
    )
    missing = client.get(f"/ph/server/{SECRET}-wrong/batch/")

    lines = json_lines()
    assert (refused.status_code, missing.status_code) == (400, 404)
    assert SECRET not in json.dumps(lines)
    # Masked on the record itself, so a handler with any other formatter never sees it.
    assert caplog.records
    assert [r for r in caplog.records if SECRET in f"{r.getMessage()} {vars(r).get('path')}"] == []
    assert [line["path"] for line in request_lines(lines)] == [
        "/ph/server/***/i/v1/analytics/events",
        "/ph/server/***/batch/",
    ]
    warnings = [line for line in lines if line["logger"] == "django.request"]
    assert [line["message"] for line in warnings] == [
        "Bad Request: /ph/server/***/i/v1/analytics/events",
        "Not Found: /ph/server/***/batch/",
    ]
    # Django logs them after the middleware returned: the id comes from the request.
    assert [line["request_id"] for line in warnings] == [
        refused["X-Request-ID"],
        missing["X-Request-ID"],
    ]


def test_runserver_request_lines_mask_the_secret_too():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    server_log = logging.getLogger("django.server")  # not propagated: our handler is on it
    server_log.addHandler(handler)
    try:
        # What runserver's request handler logs after each request.
        server_log.info('"%s" %s %s', f"POST /ph/server/{SECRET}/batch/?v=1 HTTP/1.1", 200, 13)
    finally:
        server_log.removeHandler(handler)

    entry = json.loads(stream.getvalue())
    assert entry["message"] == '"POST /ph/server/***/batch/?v=1 HTTP/1.1" 200 13'


@pytest.mark.django_db
def test_no_line_holds_the_client_address_or_the_visitor_cookie(json_lines):
    visitor = Visitor(**{"X-Forwarded-For": FORWARDED_IP})
    visitor.client.defaults["REMOTE_ADDR"] = CLIENT_IP
    visitor.decide({"analytics": True, "session_replay": False})
    visitor.client.get("/nothing-here/")

    written = json.dumps(json_lines())
    assert len(request_lines(json_lines())) == 3  # config (for the CSRF cookie), decide, 404
    assert CLIENT_IP not in written and FORWARDED_IP not in written
    assert visitor.visitor_id_cookie and visitor.visitor_id_cookie not in written


def test_a_path_with_control_characters_cannot_forge_a_line(json_lines):
    RequestIdMiddleware(lambda request: HttpResponse())(RequestFactory().get("/a%0AGET%20/b"))

    [line] = request_lines(json_lines())
    assert line["path"] == "/a?GET /b"


# --- the request id on every record --------------------------------------------------------


def logging_view(name: str) -> Callable[[Any], HttpResponse]:
    def view(request: Any) -> HttpResponse:
        logging.getLogger("consent_service.test").warning("inside %s", name)
        return HttpResponse()

    return view


def test_every_record_logged_during_a_request_carries_its_id(json_lines):
    middleware = RequestIdMiddleware(logging_view("one"))

    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="trace-abc.1"))
    logging.getLogger("consent_service.test").warning("after")

    inside, request_line, after = json_lines()
    assert response["X-Request-ID"] == "trace-abc.1"  # a well-formed incoming id is kept
    assert (inside["message"], inside["request_id"]) == ("inside one", "trace-abc.1")
    assert request_line["request_id"] == "trace-abc.1"
    assert (after["message"], after["request_id"]) == ("after", None)


def test_concurrent_requests_keep_their_own_ids(json_lines):
    barrier = threading.Barrier(2)

    def view(request: Any) -> HttpResponse:
        barrier.wait(timeout=5)  # both requests are in flight before either logs
        logging.getLogger("consent_service.test").warning("inside %s", request.path)
        barrier.wait(timeout=5)
        return HttpResponse()

    middleware = RequestIdMiddleware(view)
    ids: dict[str, str] = {}

    def serve(path: str) -> None:
        ids[path] = middleware(RequestFactory().get(path))["X-Request-ID"]

    threads = [threading.Thread(target=serve, args=(path,)) for path in ("/a", "/b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    inside = {
        line["message"]: line["request_id"] for line in json_lines() if "inside" in line["message"]
    }
    assert inside == {"inside /a": ids["/a"], "inside /b": ids["/b"]}
    assert ids["/a"] != ids["/b"]


def test_a_user_id_is_logged_as_a_short_keyed_hash():
    hashed = log_hash(42)

    assert len(hashed) == 12 and hashed == log_hash("42") != log_hash(43)
    with override_settings(SECRET_KEY="another-secret-key-" + "y" * 40):
        assert log_hash(42) != hashed


# --- worker rounds ----------------------------------------------------------------------------


def round_lines(lines: list[dict[str, Any]], logger: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == logger and "round" in line["message"]]


def forwarder_once(sandbox_url: str) -> list[dict[str, Any]]:
    """`manage.py proxy_forwarder --once` in its own process with LOG_FORMAT=json: its
    stderr, line by line (each must be JSON)."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{database['NAME']}"
    else:
        url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": url,
        "POSTHOG_API_KEY": TOKEN,
        "POSTHOG_HOST": sandbox_url,
        "LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "proxy_forwarder", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stderr.splitlines()]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("ledger_defaults", "flushable_ledger")
def test_a_forwarder_round_that_delivered_logs_one_json_line_and_an_idle_one_none(
    sandbox, make_visitor
):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True, "session_replay": True}).status_code == 201
    with override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=True):
        visitor.client.post("/ph/i/v0/e/", PAGEVIEW.body, content_type="text/plain")

    busy = forwarder_once(sandbox.url)
    idle = forwarder_once(sandbox.url)  # nothing left: quiet

    [line] = round_lines(busy, "consent_service.proxy.forwarder")
    assert (line["requests"], line["delivered"]) == (1, len(PAGEVIEW.events))
    assert (line["dead_lettered"], line["dropped"], line["retried"]) == (0, 0, 0)
    assert line["duration_ms"] >= 0
    assert len(line["request_id"]) == 32  # the round's id
    assert round_lines(idle, "consent_service.proxy.forwarder") == []


@pytest.mark.django_db
def test_an_erasure_round_logs_its_counts_under_a_round_id(sandbox, make_visitor, json_lines):
    tracked_visitor(make_visitor).withdraw()
    before = len(json_lines())

    call_command("erasure_worker", "--once", stdout=io.StringIO())

    assert ErasureRequest.objects.get().status == "succeeded"
    [line] = round_lines(json_lines()[before:], "consent_service.erasure")
    assert (line["processed"], line["succeeded"], line["failed"]) == (1, 1, 0)
    assert line["calls"] >= 1 and line["duration_ms"] >= 0
    assert len(line["request_id"]) == 32
