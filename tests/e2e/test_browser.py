"""The real posthog-js in Chromium: nothing before consent, everything after, nothing after
withdrawal, through the /ph proxy. Every assertion is on what the sandbox received."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from consent_service import analytics
from consent_service.erasure.services import erasure_claim, erasure_process
from consent_service.ledger.distinct_ids import distinct_ids_bind
from consent_service.ledger.identified_ids import identified_id_of_subject
from consent_service.ledger.models import Subject, SubjectIdentifier
from consent_service.sandbox.server import SandboxServer
from tests.conftest import delivered, identified_id_of
from tests.e2e.conftest import new_context

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SETTLE = 4.0  # posthog-js flushes its queue every 3 s
PASSWORD = "pw-e2e-123"


def wait_for(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def open_demo(page: Any, site: str) -> None:
    page.goto(f"{site}/demo/")
    page.wait_for_function("window.ConsentService && window.ConsentService.state()")


def events(sandbox: SandboxServer, name: str | None = None) -> list[Any]:
    """What PostHog holds once the forwarder has delivered the spool."""
    return [e for e in delivered(sandbox) if name is None or e.event.get("event") == name]


def posthog_storage(page: Any) -> list[str]:
    """Whatever posthog-js keeps on the device: cookies and storage keys."""
    keys = page.evaluate("() => [...Object.keys(localStorage), ...Object.keys(sessionStorage)]")
    cookies = [c["name"] for c in page.context.cookies()]
    return [k for k in [*keys, *cookies] if k.startswith(("ph_", "__ph"))]


def test_first_visit_shows_the_banner_and_sends_nothing(site, sandbox, browser_page):
    open_demo(browser_page, site)

    browser_page.get_by_role("dialog").wait_for(state="visible", timeout=10_000)
    browser_page.click("#capture")
    time.sleep(SETTLE)

    assert events(sandbox) == []
    assert [r for r in sandbox.store.requests if r.path.startswith("/flags")] == []
    assert posthog_storage(browser_page) == []


def test_accepting_analytics_only_sends_events_but_no_recordings(site, sandbox, browser_page):
    open_demo(browser_page, site)
    browser_page.evaluate("ConsentService.grant(['analytics'])")
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")

    browser_page.click("#capture")
    distinct_id = browser_page.evaluate("posthog.get_distinct_id()")

    assert wait_for(lambda: events(sandbox, "demo_button"))
    assert {e.distinct_id for e in events(sandbox)} == {distinct_id}
    assert events(sandbox, "$pageview") or events(sandbox, "$opt_in")
    time.sleep(SETTLE)
    assert [e for e in events(sandbox) if e.is_recording] == []


def test_accepting_replay_records_with_typed_input_masked(site, sandbox, browser_page):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")

    browser_page.fill("#secret", "hunter2-secret-typed")
    browser_page.click("#capture")

    assert wait_for(lambda: [e for e in sandbox.store.events if e.is_recording], timeout=25)
    recorded = str([e.event for e in sandbox.store.events if e.is_recording])
    assert "hunter2-secret-typed" not in recorded


def test_rejecting_sends_nothing(site, sandbox, browser_page):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Reject all").click()

    browser_page.click("#capture")
    time.sleep(SETTLE)

    assert events(sandbox) == []
    assert posthog_storage(browser_page) == []


def test_a_gpc_browser_sends_nothing_and_needs_no_banner(site, sandbox, chromium):
    context = new_context(chromium, extra_http_headers={"Sec-GPC": "1"})
    page = context.new_page()
    try:
        open_demo(page, site)
        assert page.get_by_role("dialog").count() == 0
        page.click("#capture")
        time.sleep(SETTLE)
    finally:
        context.close()

    assert events(sandbox) == []


def test_withdrawing_stops_events_clears_storage_and_erases(site, sandbox, browser_page):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    browser_page.click("#capture")
    assert wait_for(lambda: events(sandbox, "demo_button"))

    browser_page.click("#withdraw")
    browser_page.wait_for_function("!posthog.has_opted_in_capturing()")
    before = len(events(sandbox, "demo_button"))
    browser_page.click("#capture")
    time.sleep(SETTLE)

    assert len(events(sandbox, "demo_button")) == before
    assert [k for k in posthog_storage(browser_page) if not k.startswith("__ph_opt_in_out")] == []
    claimed = erasure_claim(worker="e2e")
    assert [r.status for r in erasure_process(requests=claimed, worker="e2e")] == ["succeeded"]
    assert sandbox.persons.deletions
    assert events(sandbox, "demo_button") == []  # deleted with the person


def test_after_the_consent_lifetime_the_banner_returns_and_events_stop(
    site, sandbox, browser_page, time_machine
):
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")

    time_machine.move_to(timezone.now() + timedelta(days=400), tick=True)
    delivered(sandbox)  # what was sent before the expiry is not this test's matter
    sandbox.store.clear()
    open_demo(browser_page, site)
    browser_page.click("#capture")
    time.sleep(SETTLE)

    browser_page.get_by_role("dialog").wait_for(state="visible", timeout=10_000)
    assert events(sandbox, "demo_button") == []


def log_in(page: Any, site: str, username: str) -> None:
    """Through the admin's login view, the project's only one (so users here are staff)."""
    page.goto(f"{site}/admin/login/?next=/demo/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_function("window.ConsentService && window.ConsentService.state()")


def minted(user: Any) -> str | None:
    subject = Subject.objects.filter(user=user).first()
    return identified_id_of_subject(subject_id=subject.pk) if subject else None


def wait_for_identified(page: Any, identified_id: str) -> None:
    page.wait_for_function(
        f"window.posthog && posthog.get_distinct_id() === '{identified_id}'", timeout=10_000
    )


def test_login_after_accepting_ties_both_ids_to_one_subject(
    site, sandbox, browser_page, django_user_model
):
    user = django_user_model.objects.create_user("ada", password=PASSWORD, is_staff=True)
    open_demo(browser_page, site)
    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    anonymous_id = browser_page.evaluate("posthog.get_distinct_id()")
    browser_page.click("#capture")
    assert wait_for(lambda: events(sandbox, "demo_button"))

    log_in(browser_page, site, "ada")
    identified_id = identified_id_of(user)  # minted when the login linked the visitor
    wait_for_identified(browser_page, identified_id)
    browser_page.click("#capture")

    assert wait_for(
        lambda: [e for e in events(sandbox, "demo_button") if e.distinct_id == identified_id]
    )
    [identify] = wait_for(lambda: events(sandbox, "$identify"))
    assert identify.distinct_id == identified_id
    assert identify.event["properties"]["$anon_distinct_id"] == anonymous_id
    owners = SubjectIdentifier.objects.filter(value__in=[anonymous_id, identified_id])
    assert {owner.subject.user_id for owner in owners} == {user.pk}
    assert owners.count() == 2
    assert str(user.pk) not in {e.distinct_id for e in events(sandbox)}


def test_a_logged_in_visitor_who_grants_is_identified_with_the_minted_id(
    site, sandbox, browser_page, django_user_model
):
    user = django_user_model.objects.create_user("ada", password=PASSWORD, is_staff=True)
    log_in(browser_page, site, "ada")
    anonymous_id = browser_page.evaluate("posthog.get_distinct_id()")
    assert browser_page.evaluate("ConsentService.state().needs_prompt") is True

    browser_page.get_by_role("button", name="Accept all").click()
    identified_id = wait_for(lambda: minted(user))  # by the POST the click sent
    wait_for_identified(browser_page, identified_id)
    browser_page.click("#capture")

    [identify] = wait_for(lambda: events(sandbox, "$identify"))
    assert identify.distinct_id == identified_id
    assert identify.event["properties"]["$anon_distinct_id"] == anonymous_id
    assert wait_for(
        lambda: [e for e in events(sandbox, "demo_button") if e.distinct_id == identified_id]
    )
    # The server's own events for this user land on the same person.
    assert analytics.user_distinct_id(user) == identified_id


def test_the_users_next_device_starts_as_the_minted_id(
    site, sandbox, chromium, browser_page, django_user_model
):
    user = django_user_model.objects.create_user("ada", password=PASSWORD, is_staff=True)
    log_in(browser_page, site, "ada")
    browser_page.get_by_role("button", name="Accept all").click()
    identified_id = wait_for(lambda: minted(user))
    wait_for_identified(browser_page, identified_id)

    phone = new_context(chromium)
    try:
        page = phone.new_page()
        log_in(page, site, "ada")  # the grant follows the user: posthog-js is bootstrapped
        wait_for_identified(page, identified_id)
        page.click("#capture")
        assert wait_for(lambda: events(sandbox, "demo_button"))
    finally:
        phone.close()

    assert {e.distinct_id for e in events(sandbox, "demo_button")} == {identified_id}
    assert len(events(sandbox, "$identify")) == 1  # the first device's; none from the phone


def test_an_id_already_taken_makes_consent_js_start_a_fresh_identity(site, sandbox, browser_page):
    """The 409 distinct_id_taken is not the stale-policy 409: consent.js resets posthog-js
    to a new anonymous id and sends the decision again, once."""
    open_demo(browser_page, site)
    browser_page.wait_for_function("window.posthog && posthog.get_distinct_id()")
    taken = browser_page.evaluate("posthog.get_distinct_id()")
    someone = Subject.objects.create()
    distinct_ids_bind(subject_id=someone.pk, distinct_ids=[taken])

    browser_page.get_by_role("button", name="Accept all").click()
    browser_page.wait_for_function("window.posthog && posthog.has_opted_in_capturing()")
    browser_page.click("#capture")

    fresh = browser_page.evaluate("posthog.get_distinct_id()")
    assert fresh != taken
    assert wait_for(lambda: events(sandbox, "demo_button"))
    assert {e.distinct_id for e in events(sandbox)} == {fresh}
    assert SubjectIdentifier.objects.get(value=taken).subject_id == someone.pk
    assert SubjectIdentifier.objects.get(value=fresh).subject_id != someone.pk
