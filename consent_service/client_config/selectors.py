"""The posthog-js init config for one visitor (option names: PROTOCOL.md section 5)."""

from __future__ import annotations

from typing import Any

from consent_service.core.conf import conf
from consent_service.ledger.selectors import ConsentView, consent_payload


def client_config(*, consent: ConsentView, reset_identity: bool = False) -> dict[str, Any]:
    settings = conf()
    analytics = consent.granted("analytics")
    # Recordings travel as captures, so replay without analytics would be dropped anyway.
    replay = analytics and consent.granted("session_replay")
    return {
        "enabled": settings.analytics_enabled,
        "token": settings.posthog_api_key,
        "api_host": settings.proxy_prefix,
        "ui_host": settings.posthog_app_host,
        "options": {
            "api_host": settings.proxy_prefix,
            "ui_host": settings.posthog_app_host,
            "opt_out_capturing_by_default": not analytics,
            "opt_out_persistence_by_default": not analytics,
            "person_profiles": settings.person_profiles,
            "capture_pageview": "history_change",
            "capture_pageleave": "if_capture_pageview",
            "disable_session_recording": not replay,
            "session_recording": _session_recording(),
        },
        "reset_identity": reset_identity,
        "consent": consent_payload(consent),
    }


def _session_recording() -> dict[str, Any]:
    settings = conf()
    options: dict[str, Any] = {
        "maskAllInputs": settings.recording_mask_all_inputs,
        "sampleRate": settings.recording_sample_rate,
    }
    if settings.recording_mask_text_selector:
        options["maskTextSelector"] = settings.recording_mask_text_selector
    if settings.recording_block_selector:
        options["blockSelector"] = settings.recording_block_selector
    return options
