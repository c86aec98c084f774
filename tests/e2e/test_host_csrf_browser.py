"""consent.js on a site whose CSRF cookie scripts cannot read, as many Django projects set it
(CSRF_COOKIE_HTTPONLY, CSRF_USE_SESSIONS): the banner's decision still lands, with the token
the config answer carried. Real posthog-js in Chromium; the assertion is the ledger's."""

from __future__ import annotations

import pytest
from django.test import override_settings

from consent_service.ledger.models import ConsentRecord

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.parametrize("csrf", [{"CSRF_COOKIE_HTTPONLY": True}, {"CSRF_USE_SESSIONS": True}])
def test_the_banner_decides_without_a_readable_csrf_cookie(site, browser_page, csrf):
    with override_settings(**csrf):
        browser_page.goto(f"{site}/demo/")
        browser_page.wait_for_function("window.ConsentService && window.ConsentService.state()")
        assert "csrftoken" not in browser_page.evaluate("document.cookie")

        with browser_page.expect_response(lambda r: r.url.endswith("/api/v1/consent/")) as posted:
            browser_page.get_by_role("button", name="Accept all").click()

        assert posted.value.status == 201
        browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    assert ConsentRecord.objects.exists()  # the decision is on the ledger
