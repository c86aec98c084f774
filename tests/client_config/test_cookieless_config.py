"""The config tells posthog-js to measure cookieless on refusal only when the preset is on."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.api.contract import assert_matches_schema

pytestmark = pytest.mark.django_db


@override_settings(CONSENT_COOKIELESS_ON_REJECT=True)
def test_with_the_preset_posthog_js_goes_cookieless_on_reject_and_stores_nothing(visitor):
    options = visitor.config().json()["options"]

    assert options["cookieless_mode"] == "on_reject"
    assert options["opt_out_capturing_by_default"] is True
    assert options["opt_out_persistence_by_default"] is True
    assert_matches_schema(options, "PosthogOptions")


@override_settings(CONSENT_COOKIELESS_ON_REJECT=True)
def test_with_the_preset_a_grant_still_gives_ordinary_options(visitor):
    assert visitor.decide({"analytics": True}).status_code == 201

    options = visitor.config().json()["options"]

    # posthog-js leaves cookieless mode on opt-in, with a fresh identity (PROTOCOL.md 5).
    assert options["opt_out_capturing_by_default"] is False
    assert options["cookieless_mode"] == "on_reject"


def test_without_the_preset_the_option_is_null(visitor):
    assert visitor.config().json()["options"]["cookieless_mode"] is None
