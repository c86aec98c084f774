"""Shared set-up for the lead's erasure tests: a consented visitor whose events reached
the sandbox through the proxy, so PostHog holds a person to delete."""

from __future__ import annotations

from django.test import override_settings

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.services import erasure_claim, erasure_process
from tests.conftest import Visitor, forward_spool
from tests.fixtures.captures import load_captures

PAGEVIEW = next(c for c in load_captures() if c.run == "js/default" and c.number == 12)


def tracked_visitor(make_visitor) -> Visitor:
    """Granted, and its events are in the sandbox under two distinct_ids, one of them
    identified (`user-1`, a client-chosen id the trust setting lets it claim), so PostHog
    holds a person to delete."""
    visitor: Visitor = make_visitor()
    assert visitor.decide({"analytics": True, "session_replay": True}).status_code == 201
    with override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=True):
        response = visitor.client.post("/ph/i/v0/e/", PAGEVIEW.body, content_type="text/plain")
    assert response.status_code == 200
    assert forward_spool().delivered == len(PAGEVIEW.events)
    return visitor


def run_worker(worker: str = "test-worker") -> list[str]:
    claimed = erasure_claim(worker=worker)
    return [result.status for result in erasure_process(requests=claimed, worker=worker)]


def only_request() -> ErasureRequest:
    return ErasureRequest.objects.get()
