"""The posthog-js init config for one visitor (option names: PROTOCOL.md section 5)."""

from __future__ import annotations

from typing import Any

from consent_service.core.conf import conf
from consent_service.ledger.selectors import ConsentView, consent_payload


def client_config(
    *, consent: ConsentView, identified_id: str | None = None, reset_identity: bool = False
) -> dict[str, Any]:
    settings = conf()
    analytics = consent.granted("analytics")
    # Recordings travel as captures, so replay without analytics would be dropped anyway.
    replay = analytics and consent.granted("session_replay")
    # Without analytics posthog-js sends nothing under it, so there is no reason to tell it.
    identified = identified_id if analytics else None
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
            "bootstrap": _bootstrap(identified),
            # posthog-js's ids may span subdomains only when the visitor cookie does: with a
            # host-only one each subdomain is another visitor (another subject), and ids
            # bound to one subject are refused to every other (409 here, dropped at /ph).
            "cross_subdomain_cookie": bool(settings.visitor_cookie_domain),
            # The preset (README "Cookieless measurement on refusal"): refused or undecided,
            # posthog-js sends cookieless events (sentinel id, nothing stored), the only
            # ones the proxy then forwards. None: posthog-js's default, no events at all.
            "cookieless_mode": "on_reject" if settings.cookieless_on_reject else None,
        },
        "identified_id": identified,
        "reset_identity": reset_identity,
        "consent": consent_payload(consent),
    }


def _bootstrap(identified_id: str | None) -> dict[str, Any]:
    """posthog-js starts as the user when it has nothing stored, and identifies an
    anonymous id it has stored (1.449.2: `_init`); an identified one it keeps."""
    if identified_id is None:
        return {}
    return {"distinctID": identified_id, "isIdentifiedID": True}


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
