"""CONSENT_IP_MODE: what PostHog (the sandbox on loopback) receives of the client address,
per mode, on every path an address can take: a spooled event through the forwarder, a
recording, a flags call, an asset, the server route, a client-supplied `$ip`.

The claims about "never a full IP" are checked on the raw requests the sandbox recorded
(headers, query and decoded body), not only on the events it parsed."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.test import Client, override_settings

from consent_service.ledger.distinct_ids import distinct_ids_bind
from consent_service.ledger.models import SubjectIdentifier
from consent_service.proxy.client_address import ip_minimised
from consent_service.sandbox.server import SandboxServer
from consent_service.spool.models import SpooledRequest
from tests.conftest import TOKEN, Visitor, anonymous_id, delivered
from tests.fixtures.captures import load_captures

pytestmark = pytest.mark.django_db

MODES = ("full", "truncate", "drop")
CLAIMED = "192.0.2.55"  # a `$ip` the client puts in its events: never believed
SPOOFED = "6.6.6.6"  # a hop the client makes up in X-Forwarded-For: never believed
FORWARDER_PEER = "127.0.0.1"  # the address PostHog reads when we send none
RECORDING = next(c for c in load_captures() if c.run == "js/recording" and c.number == 12)
SECRET = "s3cret-path-segment-0123456789"


@dataclass(frozen=True)
class Origin:
    """Where a request comes from, and what PostHog may see of it per mode."""

    remote_addr: str
    forwarded_for: str | None
    full: str
    cut: str

    def expected(self, mode: str) -> str | None:
        return {"full": self.full, "truncate": self.cut, "drop": None}[mode]

    def client(self) -> Client:
        headers = {"X-Forwarded-For": self.forwarded_for} if self.forwarded_for else {}
        return Client(enforce_csrf_checks=True, REMOTE_ADDR=self.remote_addr, headers=headers)


ORIGINS = {
    "ipv4": Origin("203.0.113.77", None, "203.0.113.77", "203.0.113.0"),
    "ipv6": Origin("2001:db8:abcd:12::77", None, "2001:db8:abcd:12::77", "2001:db8:abcd::"),
    # Our own reverse proxy on loopback; the client made up the left hop.
    "behind a trusted proxy": Origin(
        "127.0.0.1", f"{SPOOFED}, 198.51.100.23", "198.51.100.23", "198.51.100.0"
    ),
}


@pytest.fixture(params=MODES)
def mode(request) -> Iterator[str]:
    with override_settings(CONSENT_IP_MODE=request.param, CONSENT_TRUSTED_PROXIES=["127.0.0.0/8"]):
        yield request.param


@pytest.fixture(params=list(ORIGINS), ids=str)
def origin(request) -> Origin:
    return ORIGINS[request.param]


def visitor_from(origin: Origin, **purposes: bool) -> Visitor:
    visitor = Visitor()
    visitor.client = origin.client()
    choices = {"analytics": True, "session_replay": True, **purposes}
    assert visitor.decide(choices).status_code == 201
    return visitor


def wire(sandbox: SandboxServer) -> str:
    """Everything PostHog was sent, as text: headers, query strings and (gunzipped) bodies."""
    parts = []
    for request in sandbox.store.requests:
        body = request.body
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        parts += [json.dumps(request.headers), request.query, body.decode("utf-8", "replace")]
    return "\n".join(parts)


def assert_nothing_more_than_allowed(sandbox: SandboxServer, origin: Origin, mode: str) -> None:
    text = wire(sandbox)
    assert SPOOFED not in text
    assert CLAIMED not in text
    if mode != "full":
        assert origin.full not in text
    if mode == "drop":
        assert origin.cut not in text


def forwarded_for(sandbox: SandboxServer, path: str) -> str | None:
    [request] = [r for r in sandbox.store.requests if r.path == path]
    return {k.lower(): v for k, v in request.headers.items()}.get("x-forwarded-for")


def test_a_spooled_event_carries_the_modes_ip_and_the_spool_never_holds_more(mode, origin, sandbox):
    visitor = visitor_from(origin)
    event = {"event": "$pageview", "properties": {"distinct_id": anonymous_id("a"), "$ip": CLAIMED}}
    body = json.dumps({"api_key": TOKEN, "batch": [event]})

    assert visitor.client.post("/ph/e/", body, content_type="text/plain").status_code == 200

    assert SpooledRequest.objects.get().ip == (origin.expected(mode) or "")
    [received] = delivered(sandbox)
    properties = received.event["properties"]
    assert properties.get("$ip") == origin.expected(mode)
    assert properties.get("$geoip_disable") is (True if mode == "drop" else None)
    # With no $ip, PostHog records the address that connected: the forwarder's, ours.
    assert received.ip == (origin.expected(mode) or FORWARDER_PEER)
    assert forwarded_for(sandbox, "/batch/") is None  # one batch mixes visitors
    assert_nothing_more_than_allowed(sandbox, origin, mode)


def test_a_full_ip_spooled_before_a_stricter_mode_is_cut_at_delivery(sandbox):
    origin = ORIGINS["ipv4"]
    with override_settings(CONSENT_IP_MODE="full"):
        visitor = visitor_from(origin)
        event = {"event": "$pageview", "properties": {"distinct_id": anonymous_id("b")}}
        body = json.dumps({"api_key": TOKEN, "batch": [event]})
        visitor.client.post("/ph/e/", body, content_type="text/plain")
    assert SpooledRequest.objects.get().ip == origin.full

    with override_settings(CONSENT_IP_MODE="truncate"):
        [received] = delivered(sandbox)

    assert received.event["properties"]["$ip"] == origin.cut
    assert origin.full not in wire(sandbox)


def test_a_recording_carries_the_modes_ip_in_the_header_only(mode, origin, sandbox):
    visitor = visitor_from(origin)
    events = [{**e, "properties": {**e["properties"], "$ip": CLAIMED}} for e in RECORDING.events]

    response = visitor.client.post("/ph/s/", json.dumps(events), content_type="text/plain")

    assert response.status_code == 200
    assert forwarded_for(sandbox, "/s/") == origin.expected(mode)
    recorded = [e.event["properties"] for e in sandbox.store.events]
    assert recorded and all("$ip" not in properties for properties in recorded)
    assert all(p.get("$geoip_disable") is (True if mode == "drop" else None) for p in recorded)
    assert_nothing_more_than_allowed(sandbox, origin, mode)


def test_a_flags_call_carries_the_modes_ip_in_the_header_only(mode, origin, sandbox):
    visitor = visitor_from(origin)
    body = json.dumps({"token": TOKEN, "distinct_id": anonymous_id("f"), "$ip": CLAIMED})

    response = visitor.client.post("/ph/flags/?v=2", body, content_type="text/plain")

    assert "demo-flag" in response.json()["flags"]
    assert forwarded_for(sandbox, "/flags/") == origin.expected(mode)
    [request] = sandbox.store.requests
    assert json.loads(request.body).get("geoip_disable") is (True if mode == "drop" else None)
    assert_nothing_more_than_allowed(sandbox, origin, mode)


def test_an_asset_request_carries_the_modes_ip(mode, sandbox):
    origin = ORIGINS["behind a trusted proxy"]

    origin.client().get("/ph/static/array.js")

    [request] = sandbox.store.requests
    assert forwarded_for(sandbox, request.path) == origin.expected(mode)
    assert_nothing_more_than_allowed(sandbox, origin, mode)


def test_a_backend_supplied_ip_is_replaced_by_the_callers_cut_to_the_mode(mode, sandbox):
    """The server route: the backend is the client; its `$ip` claim is not passed on."""
    origin = ORIGINS["ipv4"]
    Visitor().decide({"analytics": True, "session_replay": False})
    subject_id = SubjectIdentifier.objects.filter(kind="visitor").latest("id").subject_id
    distinct_ids_bind(subject_id=subject_id, distinct_ids=["user-123"])
    event = {"event": "signup", "distinct_id": "user-123", "properties": {"$ip": CLAIMED}}

    with override_settings(CONSENT_PROXY_SERVER_SECRET=SECRET):
        response = origin.client().post(
            f"/ph/server/{SECRET}/batch/",
            {"api_key": TOKEN, "batch": [event]},
            content_type="application/json",
        )

    assert response.status_code == 200
    [received] = delivered(sandbox)
    assert received.event["properties"].get("$ip") == origin.expected(mode)
    assert_nothing_more_than_allowed(sandbox, origin, mode)


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12::77", "2001:db8:abcd::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),  # a dual-stack socket's IPv4 client
        ("203.0.113.0", "203.0.113.0"),  # cut again at delivery: unchanged
        ("unix-socket", ""),
        ("", ""),
    ],
)
def test_truncation_keeps_the_network_only(address, truncated):
    with override_settings(CONSENT_IP_MODE="truncate"):
        assert ip_minimised(address) == truncated
    with override_settings(CONSENT_IP_MODE="drop"):
        assert ip_minimised(address) == ""
    with override_settings(CONSENT_IP_MODE="full"):
        assert ip_minimised(address) == address


def test_an_unknown_mode_sends_no_address_at_all():
    """The system check refuses it (consent.E013); a process started anyway sends less."""
    with override_settings(CONSENT_IP_MODE="hash"):
        assert ip_minimised("203.0.113.77") == ""
