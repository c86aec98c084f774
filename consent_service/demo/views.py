"""A page to try consent.js by hand under `make run`: banner, captures, masking, withdrawal."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from consent_service.core.conf import conf

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def demo(request: HttpRequest) -> HttpResponse:
    # A demo, not a product page: it would send demo events to a real PostHog project.
    if not settings.DEBUG:
        raise Http404("The demo is served only with DJANGO_DEBUG on.")
    return render(request, "demo/index.html", {"sandbox_url": sandbox_url()})


def sandbox_url() -> str | None:
    """The local PostHog sandbox `make run` starts, or None when PostHog is a real one."""
    host = conf().posthog_host
    return host if urlsplit(host).hostname in LOOPBACK_HOSTS else None
