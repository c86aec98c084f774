from __future__ import annotations

from typing import Any

from rest_framework import serializers

from consent_service.ledger.serializers import ConsentStateSerializer


class SessionRecordingSerializer(serializers.Serializer[Any]):
    maskAllInputs = serializers.BooleanField(help_text="Mask every input's value.")
    maskTextSelector = serializers.CharField(
        required=False, help_text="CSS selector whose text is masked."
    )
    blockSelector = serializers.CharField(
        required=False, help_text="CSS selector of elements left out of recordings."
    )
    sampleRate = serializers.FloatField(help_text="Share of sessions recorded, 0 to 1.")


class BootstrapSerializer(serializers.Serializer[Any]):
    distinctID = serializers.CharField(
        required=False, help_text="The logged-in user's identified id; absent otherwise."
    )
    isIdentifiedID = serializers.BooleanField(
        required=False, help_text="Always true when distinctID is given."
    )


class PosthogOptionsSerializer(serializers.Serializer[Any]):
    api_host = serializers.CharField(help_text="The consent-gated proxy path.")
    ui_host = serializers.CharField(help_text="PostHog app host, for links and the toolbar.")
    opt_out_capturing_by_default = serializers.BooleanField(
        help_text="True until analytics is granted: posthog-js sends no events."
    )
    opt_out_persistence_by_default = serializers.BooleanField(
        help_text="True until analytics is granted: nothing stored on the device."
    )
    person_profiles = serializers.ChoiceField(
        choices=["always", "never", "identified_only"], help_text="Person processing mode."
    )
    capture_pageview = serializers.CharField(help_text="Pageview capture mode.")
    capture_pageleave = serializers.CharField(help_text="Pageleave capture mode.")
    disable_session_recording = serializers.BooleanField(
        help_text="True unless session_replay (and analytics) is granted."
    )
    session_recording = SessionRecordingSerializer(help_text="Recording masks and sample rate.")
    bootstrap = BootstrapSerializer(
        help_text="{distinctID: identified_id, isIdentifiedID: true} when there is one: "
        "posthog-js starts as it, or identifies the anonymous id it had stored. Else empty."
    )
    cross_subdomain_cookie = serializers.BooleanField(
        help_text="True only when the visitor cookie spans subdomains too "
        "(CONSENT_VISITOR_COOKIE_DOMAIN)."
    )
    cookieless_mode = serializers.ChoiceField(
        choices=["on_reject"],
        allow_null=True,
        help_text='"on_reject" with CONSENT_COOKIELESS_ON_REJECT: while analytics is not '
        "granted, posthog-js sends cookieless events (no id, nothing stored). Else null.",
    )


class ClientConfigSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(
        help_text="False when no PostHog project token is configured: load nothing."
    )
    token = serializers.CharField(help_text="The PostHog project token (phc_…), public.")
    api_host = serializers.CharField(help_text="Where posthog-js sends traffic: the proxy.")
    ui_host = serializers.CharField(help_text="The PostHog app host.")
    options = PosthogOptionsSerializer(help_text="Pass to posthog.init(token, options).")
    identified_id = serializers.CharField(
        allow_null=True,
        help_text="The logged-in user's identified distinct_id, minted by this service, while "
        "analytics is granted: call posthog.identify() with it (consent.js does). Pages never "
        "identify() their own ids (user pks, emails).",
    )
    reset_identity = serializers.BooleanField(
        help_text="The visitor's PostHog ids were erased after a withdrawal: call "
        "posthog.reset(true) before opt_in_capturing(), or every event is refused."
    )
    consent = ConsentStateSerializer(help_text="The visitor's consent, as GET /consent/.")
    csrf_token = serializers.CharField(
        help_text="A CSRF token for this browser's writes (X-CSRFToken), for pages that cannot "
        "read the CSRF cookie (CSRF_COOKIE_HTTPONLY, CSRF_USE_SESSIONS)."
    )
