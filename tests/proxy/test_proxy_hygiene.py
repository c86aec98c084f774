"""Headers, paths, limits and upstream failures, against the sandbox over loopback."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from django.test import override_settings

from consent_service.proxy.upstream import response_headers
from tests.conftest import Visitor, delivered
from tests.fixtures.captures import load_captures

pytestmark = pytest.mark.django_db

CAPTURE = next(c for c in load_captures() if c.run == "js/default" and c.number == 3)
# Recordings still go to PostHog within the request (events go through the spool).
RECORDING = next(c for c in load_captures() if c.run == "js/recording" and c.number == 12)


@pytest.fixture
def consented(make_visitor):
    visitor = make_visitor()
    assert visitor.decide({"analytics": True, "session_replay": True}).status_code == 201
    return visitor


def post(
    visitor: Visitor, body: bytes = CAPTURE.body, headers: dict[str, str] | None = None
) -> Any:
    return visitor.client.post("/ph/e/", body, content_type="text/plain", headers=headers or {})


def record(visitor: Visitor, headers: dict[str, str] | None = None) -> Any:
    return visitor.client.post(
        "/ph/s/", RECORDING.body, content_type="text/plain", headers=headers or {}
    )


SECRETS = {
    "Authorization": "Bearer secret",
    "X-CSRFToken": "secret-csrf",
    "Proxy-Authorization": "Basic secret",
    "Connection": "keep-alive, X-Private",
    "X-Private": "secret",
    "X-Forwarded-For": "6.6.6.6",
    "X-Real-IP": "6.6.6.6",
    "User-Agent": "Mozilla/5.0 test",
    "Referer": "http://testserver/page",
}


def test_events_reach_posthog_with_none_of_the_visitors_headers(sandbox, consented):
    consented.client.cookies["sessionid"] = "secret-session"
    assert post(consented, headers=SECRETS).status_code == 200

    events = delivered(sandbox)

    sent = {k.lower(): v for k, v in sandbox.store.requests[-1].headers.items()}
    assert "secret" not in json.dumps(sent)
    assert "x-forwarded-for" not in sent  # one batch mixes visitors: the IP is per event
    assert sent["user-agent"] == "consent-service-forwarder"
    assert [event.event["properties"]["$ip"] for event in events] == ["127.0.0.1"]


def test_cookies_credentials_and_hop_by_hop_headers_never_reach_posthog(sandbox, consented):
    consented.client.cookies["sessionid"] = "secret-session"
    response = record(consented, headers=SECRETS)

    assert response.status_code == 200
    sent = {k.lower(): v for k, v in sandbox.store.requests[-1].headers.items()}
    for name in ("cookie", "authorization", "x-csrftoken", "proxy-authorization", "x-private"):
        assert name not in sent
    assert "secret" not in json.dumps(sent)
    assert sent["x-forwarded-for"] == "127.0.0.1"  # the peer, not the client's claim
    assert sent["user-agent"] == "Mozilla/5.0 test"
    assert sent["referer"] == "http://testserver/page"
    assert sent["host"] == sandbox.url.removeprefix("http://")


@override_settings(CONSENT_TRUSTED_PROXIES=["127.0.0.0/8"])
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(sandbox, consented):
    record(consented, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    post(consented, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})

    sent = {k.lower(): v for k, v in sandbox.store.requests[-1].headers.items()}
    assert sent["x-forwarded-for"] == "203.0.113.9"
    assert delivered(sandbox)[-1].event["properties"]["$ip"] == "203.0.113.9"


def test_set_cookie_and_hop_by_hop_headers_never_come_back():
    upstream = httpx.Response(
        200,
        headers={
            "Set-Cookie": "ph=1",
            "Connection": "close",
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/json",
            "Access-Control-Allow-Credentials": "true",
        },
    )

    assert response_headers(upstream, raw_body=False) == {"content-type": "application/json"}


@pytest.mark.parametrize(
    "path",
    [
        "/ph/../api/v1/consent/",
        "/ph/%2e%2e/api/v1/consent/",
        "/ph//evil.example/e/",
        "/ph/http://evil.example/e/",
        "/ph/@evil.example/e/",
        "/ph/static/../../etc/passwd",
        "/ph/static/%2e%2e/%2e%2e/etc/passwd",
        "/ph/e/../../admin/",
        "/ph/api/projects/1/persons/",
        "/ph/e/extra",
        "/ph/engage/",
        "/ph/track/",
        "/ph/capture/",
        "/ph/server/not-the-secret/batch/",
        "/ph/server//batch/",
    ],
)
def test_paths_outside_posthogs_routes_are_404_and_never_forwarded(sandbox, consented, path):
    response = consented.client.post(path, CAPTURE.body, content_type="text/plain")
    fetched = consented.client.get(path)

    assert response.status_code == 404
    assert fetched.status_code == 404
    assert sandbox.store.requests == []


def test_wrong_method_is_405(sandbox, consented):
    response = consented.client.put("/ph/e/", CAPTURE.body, content_type="text/plain")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@override_settings(CONSENT_PROXY_MAX_DECODED_BYTES=1 << 20)
def test_a_gzip_bomb_gets_413_without_reaching_posthog(sandbox, consented):
    bomb = gzip.compress(b" " * (20 << 20))

    response = post(consented, bomb)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert sandbox.store.requests == []


@override_settings(CONSENT_PROXY_MAX_BODY_BYTES=1000)
def test_an_oversized_body_gets_413(sandbox, consented):
    response = post(consented, b"x" * 2000)

    assert response.status_code == 413


@pytest.mark.parametrize(
    "body", [b"\x00\x01\x02garbage", b"\x1f\x8b\x08\x00broken", CAPTURE.body[:-10], b"{"]
)
def test_garbage_and_truncated_bodies_get_400_never_500(sandbox, consented, body):
    response = post(consented, body)

    assert response.status_code == 400
    assert set(response.json()) >= {"type", "code", "detail"}
    assert sandbox.store.requests == []


def test_an_upstream_5xx_is_a_502_so_posthog_js_retries(sandbox, consented):
    sandbox.faults.add(503, times=1, retry_after=2)

    response = record(consented)

    assert response.status_code == 502
    assert response.json()["code"] == "upstream_failed"
    assert "Retry-After" not in response  # our answer, not PostHog's headers


def test_an_upstream_timeout_is_a_504(sandbox, consented):
    # Read timeout is 1 s here; the late answer is an error, so nothing is stored after
    # the test ends.
    sandbox.faults.add(503, times=1, latency_ms=1500)

    response = record(consented)

    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"


def test_a_reset_connection_is_a_502(sandbox, consented):
    sandbox.faults.add(drop=True, times=3)

    response = record(consented)

    assert response.status_code == 502
    assert response.json()["code"] == "upstream_unreachable"


@override_settings(POSTHOG_HOST="http://127.0.0.1:9")
def test_an_unreachable_posthog_is_a_502(sandbox, consented):
    assert record(consented).status_code == 502
