"""`manage.py posthog_check` over the network against the sandbox, and the deploy check of the
settings' shape, which needs no network."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from consent_service.erasure.models import PostHogCheck
from consent_service.erasure.posthog_check import posthog_check_latest

pytestmark = pytest.mark.django_db


def test_it_passes_against_a_healthy_posthog_and_stores_the_result(sandbox, capsys):
    call_command("posthog_check")

    assert "passed" in capsys.readouterr().out
    latest = posthog_check_latest()
    assert latest is not None and latest.ok and latest.status_code == 200
    assert sandbox.store.requests[-1].path.endswith("/api/projects/1/persons/")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"POSTHOG_PROJECT_ID": "999"}, "POSTHOG_PROJECT_ID"),
        ({"POSTHOG_PERSONAL_API_KEY": "phx_revoked"}, "POSTHOG_PERSONAL_API_KEY"),
        ({"POSTHOG_APP_HOST": "http://127.0.0.1:9"}, "could not be reached"),
        ({"POSTHOG_PERSONAL_API_KEY": ""}, "must both be set"),
    ],
    ids=["wrong project", "revoked key", "unreachable host", "no key"],
)
def test_it_fails_clearly_for_each_misconfiguration(settings, says, sandbox):
    with override_settings(**settings), pytest.raises(CommandError) as failed:
        call_command("posthog_check")

    assert says in str(failed.value)
    assert PostHogCheck.objects.get().ok is False


def test_a_wrong_app_host_is_told_apart_from_a_missing_person(sandbox):
    wrong_host = override_settings(POSTHOG_APP_HOST=sandbox.url + "/not-posthog")
    with wrong_host, pytest.raises(CommandError) as failed:
        call_command("posthog_check")

    assert "no such project or route" in str(failed.value)


DEPLOYED = {
    "POSTHOG_API_KEY": "phc_x",
    "POSTHOG_PROJECT_ID": "12345",
    "POSTHOG_PERSONAL_API_KEY": "phx_x",
    "POSTHOG_APP_HOST": "https://eu.posthog.com",
}


@pytest.mark.parametrize(
    ("change", "check_id"),
    [
        ({}, None),
        ({"POSTHOG_PROJECT_ID": "my-project"}, "consent.E007"),
        ({"POSTHOG_PERSONAL_API_KEY": "phc_x"}, "consent.E008"),
        ({"POSTHOG_APP_HOST": "https://eu.i.posthog.com"}, "consent.E009"),
    ],
)
def test_the_deploy_check_validates_the_shape_offline(change, check_id):
    with override_settings(**{**DEPLOYED, **change}):
        ids = {message.id for message in run_checks(include_deployment_checks=True)}

    erasure_ids = {i for i in ids if i in {"consent.E007", "consent.E008", "consent.E009"}}
    assert erasure_ids == ({check_id} if check_id else set())


def test_staff_see_the_checks_in_admin_and_cannot_change_them(sandbox, admin_client):
    call_command("posthog_check")

    page = admin_client.get("/admin/erasure/posthogcheck/")

    assert page.status_code == 200
    assert b"can read this project" in page.content
    assert admin_client.get("/admin/erasure/posthogcheck/add/").status_code == 403
