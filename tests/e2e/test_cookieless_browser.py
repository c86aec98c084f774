"""Cookieless measurement on refusal with the real posthog-js 1.449.2 in Chromium
(CONSENT_COOKIELESS_ON_REJECT): what reaches PostHog is cookieless events only, and the
device keeps nothing of posthog-js's but, at most, its opt-out flag.

Observed here: with `opt_out_capturing_by_default` and `cookieless_mode: 'on_reject'`,
posthog-js treats a visitor who has not decided as refused (`get_explicit_consent_status()`
is "pending", `is_capturing()` true, distinct_id the sentinel) and sends cookieless events
at once. PROTOCOL.md 2.5 saw nothing sent while pending, without the opt-out default."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from consent_service.ledger.models import SubjectIdentifier
from consent_service.proxy.cookieless import ALLOWED_PROPERTIES, COOKIELESS_ID
from tests.conftest import TOKEN, delivered
from tests.e2e.test_browser import open_demo, posthog_storage, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("preset"),
]
FLUSH_MS = 4000  # posthog-js flushes its queue every 3 s
OPT_OUT_FLAG = f"__ph_opt_in_out_{TOKEN}"
SENT = {*ALLOWED_PROPERTIES, "distinct_id", "$ip", "$cookieless_mode", "$process_person_profile"}


@pytest.fixture
def preset(site: str) -> Any:
    with override_settings(CONSENT_COOKIELESS_ON_REJECT=True):
        yield


def names(events: list[Any]) -> list[str]:
    return [e.event["event"] for e in events]


def test_a_refusing_visitor_is_measured_cookieless_and_nothing_is_stored(
    site, sandbox, browser_page
):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Reject all").click()
    browser_page.wait_for_function("!ConsentService.state().needs_prompt")
    browser_page.goto(f"{site}/demo/?page=2")  # browse on
    browser_page.wait_for_function("window.ConsentService && ConsentService.state()")
    browser_page.click("#capture")
    browser_page.wait_for_timeout(FLUSH_MS)

    wait_for(lambda: "demo_button" in names(delivered(sandbox)))
    events = delivered(sandbox)
    assert events and all(e.distinct_id.startswith(COOKIELESS_ID + "_") for e in events)
    assert {"$pageview", "demo_button"} <= set(names(events))
    assert any(e.event["properties"]["$current_url"].endswith("?page=2") for e in events)
    assert all(set(e.event["properties"]) <= SENT for e in events)
    assert {e.ip for e in events} == {"127.0.0.1"}  # the browser's address, for the hash
    assert sandbox.persons.all() == []
    assert not SubjectIdentifier.objects.filter(kind=SubjectIdentifier.Kind.DISTINCT_ID).exists()
    assert set(posthog_storage(browser_page)) <= {OPT_OUT_FLAG}


def test_granting_after_cookieless_measurement_starts_a_fresh_identity(site, sandbox, browser_page):
    open_demo(browser_page, site)  # not decided yet: cookieless already
    browser_page.click("#capture")
    browser_page.wait_for_timeout(FLUSH_MS)
    before = wait_for(lambda: delivered(sandbox))
    assert before and all(e.distinct_id.startswith(COOKIELESS_ID + "_") for e in before)
    assert set(posthog_storage(browser_page)) <= {OPT_OUT_FLAG}

    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    browser_page.click("#capture")
    own = browser_page.evaluate("posthog.get_distinct_id()")

    assert own != COOKIELESS_ID

    def own_events() -> list[Any]:
        return [e for e in delivered(sandbox) if e.distinct_id == own]

    wait_for(lambda: "demo_button" in names(own_events()))
    assert "demo_button" in names(own_events())
    assert SubjectIdentifier.objects.filter(value=own).exists()  # bound: erasable
