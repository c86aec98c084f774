"""The real posthog-js over its /ph/ limit: the proxy answers 503 with Retry-After, posthog-js
keeps the batch and retries, and every event arrives exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from tests.e2e.test_browser import events, open_demo, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
SENT = 6


@override_settings(CONSENT_PROXY_RATE_PER_VISITOR="4/2s", CONSENT_PROXY_RATE_PER_IP="0")
def test_posthog_js_retries_what_the_limit_refused_and_loses_nothing(site, sandbox, browser_page):
    statuses: list[tuple[str, int]] = []

    def seen(response: Any) -> None:
        if "/ph/" in response.url and "/e/" in response.url:
            statuses.append((response.url, response.status))

    browser_page.on("response", seen)
    requests: list[str] = []
    browser_page.on("request", lambda request: requests.append(request.url))
    open_demo(browser_page, site)
    browser_page.evaluate("ConsentService.grant(['analytics'])")
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    burst = "n => { for (let i = 0; i < n; i++) posthog.capture('burst', {n: i}, {%s}) }"
    burst %= "send_instantly: true"
    browser_page.evaluate(burst, SENT)

    assert wait_for(lambda: len(events(sandbox, "burst")) >= SENT, timeout=90)
    assert sorted(e.event["properties"]["n"] for e in events(sandbox, "burst")) == list(range(SENT))
    browser_page.wait_for_timeout(500)  # Playwright runs the callbacks only inside its calls
    assert 503 in {status for _, status in statuses}
    refused = [url for url, status in statuses if status == 503]
    assert len([url for url in requests if "/e/" in url]) > len(refused)  # it sent them again


def test_consent_js_over_the_read_limit_gets_429_and_posthog_js_stays_off(
    site, sandbox, browser_page
):
    open_demo(browser_page, site)
    browser_page.evaluate("ConsentService.grant(['analytics'])")
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    # The counts of the first page stay: one more config GET is over this limit.
    with override_settings(CONSENT_READ_RATE_PER_IP="1/min"):
        with browser_page.expect_response(lambda r: "/analytics/config/" in r.url) as config:
            browser_page.reload()
        answer = config.value
        browser_page.click("#capture")
        browser_page.wait_for_timeout(1000)

        assert answer.status == 429
        assert 1 <= int(answer.headers["retry-after"]) <= 61
        assert answer.json()["code"] == "throttled"
        # consent.js could not read the config: posthog-js is never loaded on this page.
        assert browser_page.evaluate("typeof window.posthog") == "undefined"
    assert events(sandbox, "demo_button") == []
