"""A host app without Django login: real posthog-js in Chromium, identified through
ConsentService.identify() with a token its backend signed. Assertions are on what the
sandbox received and on the ledger."""

from __future__ import annotations

import pytest

from consent_service.consent.signed_identity import sign_identity
from consent_service.ledger.identified_ids import identified_id_of_subject
from consent_service.ledger.models import Subject, SubjectIdentifier
from tests.e2e.conftest import PAGE_HOST
from tests.e2e.test_browser import events, open_demo, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

HOST_USER_ID = "shop-user-42"


@pytest.fixture
def identity_on(settings):
    settings.CONSENT_IDENTITY_SECRET = "e2e-identity-secret"
    settings.CONSENT_IDENTITY_SITE = PAGE_HOST


def test_identify_after_accepting_ties_both_ids_to_one_subject(
    identity_on, site, sandbox, browser_page
):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    anonymous_id = browser_page.evaluate("posthog.get_distinct_id()")
    browser_page.click("#capture")
    assert wait_for(lambda: events(sandbox, "demo_button"))

    signature = sign_identity(HOST_USER_ID)  # what the host app's backend hands its page
    browser_page.evaluate(
        "([userId, signature]) => ConsentService.identify({userId, signature})",
        [HOST_USER_ID, signature],
    )
    subject = Subject.objects.get(identifiers__kind="external_user")
    identified_id = identified_id_of_subject(subject_id=subject.pk)
    assert identified_id is not None
    browser_page.wait_for_function(
        f"posthog.get_distinct_id() === '{identified_id}'", timeout=10_000
    )
    browser_page.click("#capture")

    [identify] = wait_for(lambda: events(sandbox, "$identify"))
    assert identify.distinct_id == identified_id
    assert identify.event["properties"]["$anon_distinct_id"] == anonymous_id
    assert wait_for(
        lambda: [e for e in events(sandbox, "demo_button") if e.distinct_id == identified_id]
    )
    owners = SubjectIdentifier.objects.filter(value__in=[anonymous_id, identified_id])
    assert {owner.subject_id for owner in owners} == {subject.pk}
    assert owners.count() == 2
    assert Subject.objects.filter(merged_into__isnull=True).count() == 1
    assert HOST_USER_ID not in {e.distinct_id for e in events(sandbox)}


def test_forget_identity_starts_the_browser_afresh_as_a_logout_does(
    identity_on, site, sandbox, browser_page
):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    browser_page.evaluate(
        "([userId, signature]) => ConsentService.identify({userId, signature})",
        [HOST_USER_ID, sign_identity(HOST_USER_ID)],
    )
    subject = Subject.objects.get(identifiers__kind="external_user")
    identified_id = identified_id_of_subject(subject_id=subject.pk)
    open_demo(browser_page, site)  # posthog-js now starts with analytics granted
    browser_page.wait_for_function(f"posthog.get_distinct_id() === '{identified_id}'")

    state = browser_page.evaluate("ConsentService.forgetIdentity()")

    assert state["needs_prompt"] is True
    assert browser_page.evaluate("posthog.get_distinct_id()") != identified_id
    assert browser_page.evaluate("posthog.has_opted_in_capturing()") is False
    refused = browser_page.evaluate(
        """() => ConsentService.identify({userId: 'x', signature: 'v1.1.forged'})
             .then(() => null, (error) => [error.status, error.body.code])"""
    )
    assert refused == [400, "identity_malformed"]
