"""/ph/ limits per visitor and per client address: an excess is a 503 with Retry-After (which
posthog-js retries), never a 4xx (which it would drop), and stores nothing."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from consent_service.spool.store import spool_counts
from tests.conftest import TOKEN, Visitor, anonymous_id

pytestmark = pytest.mark.django_db
SECRET = "s3cret-path-segment-0123456789"


def send(client: Client, path: str = "/ph/e/", **headers: str):
    body = json.dumps({"api_key": TOKEN, "batch": [{"event": "$pageview", "distinct_id": "x"}]})
    return client.post(path, body, content_type="text/plain", headers=headers)


def consented() -> Visitor:
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    return visitor


def pageview(visitor: Visitor):
    event = {"event": "$pageview", "properties": {"distinct_id": anonymous_id(1)}}
    body = json.dumps({"api_key": TOKEN, "batch": [event]})
    return visitor.client.post("/ph/e/", body, content_type="text/plain")


@override_settings(CONSENT_PROXY_RATE_PER_VISITOR="3/min", CONSENT_PROXY_RATE_PER_IP="0")
def test_a_visitor_over_its_limit_gets_503_with_retry_after_and_nothing_is_spooled():
    visitor = consented()
    assert [pageview(visitor).status_code for _ in range(3)] == [200, 200, 200]
    waiting = spool_counts()[0]

    refused = pageview(visitor)

    assert refused.status_code == 503
    assert 1 <= int(refused["Retry-After"]) <= 30
    assert refused.json()["code"] == "rate_limited"
    assert spool_counts()[0] == waiting
    assert pageview(consented()).status_code == 200  # another visitor has its own count


@override_settings(CONSENT_PROXY_RATE_PER_VISITOR="0", CONSENT_PROXY_RATE_PER_IP="2/min")
def test_an_address_over_its_limit_gets_503_whatever_x_forwarded_for_claims():
    client = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [send(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(4)]
    assert statuses == [200, 200, 503, 503]
    assert send(Client(REMOTE_ADDR="203.0.113.8")).status_code == 200


@override_settings(CONSENT_PROXY_RATE_PER_VISITOR="0", CONSENT_PROXY_RATE_PER_IP="1/min")
@pytest.mark.parametrize("path", ["/ph/flags/?v=2", "/ph/s/", "/ph/static/array.js"])
def test_every_browser_route_counts(path, sandbox):
    client = Client(REMOTE_ADDR="203.0.113.9")
    send(client)
    response = client.get(path) if "static" in path else send(client, path)
    assert response.status_code == 503
    assert "Retry-After" in response


@override_settings(
    CONSENT_PROXY_RATE_PER_VISITOR="0",
    CONSENT_PROXY_RATE_PER_IP="1/min",
    CONSENT_PROXY_SERVER_SECRET=SECRET,
)
def test_the_server_route_speaks_for_many_visitors_and_is_not_limited():
    client = Client(REMOTE_ADDR="203.0.113.10")
    statuses = [send(client, f"/ph/server/{SECRET}/batch/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


@override_settings(CONSENT_PROXY_RATE_PER_VISITOR="0", CONSENT_PROXY_RATE_PER_IP="0")
def test_zero_turns_a_limit_off():
    client = Client(REMOTE_ADDR="203.0.113.11")
    assert {send(client).status_code for _ in range(20)} == {200}
