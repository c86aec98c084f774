"""Misconfiguration is not success (RELIABILITY.md J16): a request whose calls can only fail
because the project, the host or the key is wrong stays not done, with the reason shown."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from consent_service.erasure.models import ErasureRequest
from tests.erasure.helpers import only_request, run_worker, tracked_visitor

pytestmark = pytest.mark.django_db

STRATEGIES = ["bulk", "per_person"]


@pytest.fixture
def withdrawn(sandbox, make_visitor):
    visitor = tracked_visitor(make_visitor)
    visitor.withdraw()
    return visitor


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_wrong_project_id_leaves_the_request_pending_and_says_why(
    strategy, sandbox, withdrawn, caplog
):
    wrong = override_settings(POSTHOG_PROJECT_ID="999", CONSENT_ERASURE_STRATEGY=strategy)
    with wrong, caplog.at_level(logging.ERROR, logger="consent_service.erasure"):
        assert run_worker() == ["pending"]
        ErasureRequest.objects.update(next_attempt_at=only_request().created_at)
        assert run_worker() == ["pending"]

    request = only_request()
    assert request.outcome == ""
    assert request.last_error.startswith("configuration failure")
    assert "HTTP 404" in request.last_error
    assert len([r for r in caplog.records if "configuration failure" in r.getMessage()]) == 1
    assert sandbox.persons.all() != []  # nothing was deleted, and nothing claims it was

    assert run_worker() == []  # backing off
    ErasureRequest.objects.update(next_attempt_at=request.created_at)
    assert run_worker() == ["succeeded"]  # the setting fixed: done


def test_a_wrong_host_leaves_the_request_pending(sandbox, withdrawn):
    with override_settings(POSTHOG_APP_HOST=sandbox.url + "/not-posthog"):
        assert run_worker() == ["pending"]

    assert only_request().last_error.startswith("configuration failure")


def test_a_revoked_key_fails_the_request_with_the_reason(sandbox, withdrawn):
    with override_settings(POSTHOG_PERSONAL_API_KEY="phx_revoked"):
        assert run_worker() == ["failed"]

    request = only_request()
    assert "HTTP 401" in request.last_error
    assert request.completed_at is None


def test_a_person_already_gone_is_still_done(sandbox, withdrawn):
    sandbox.persons.clear()

    with override_settings(CONSENT_ERASURE_STRATEGY="per_person"):
        assert run_worker() == ["succeeded"]

    assert only_request().outcome == "already_gone"
