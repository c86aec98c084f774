"""/ph/ limits per client address and per visitor. posthog-js drops a batch on any 4xx and
retries a 5xx, so an excess is a 503 with Retry-After, never a 429: nothing is lost, the
browser only waits. The server route is exempt: one backend speaks for many visitors."""

from __future__ import annotations

from django.http import HttpRequest

from consent_service.core.conf import conf
from consent_service.core.network import client_ip
from consent_service.core.rate_limits import Verdict, limits_hit
from consent_service.core.visitor import existing_visitor_id
from consent_service.proxy.routes import Route


def proxy_rate_check(request: HttpRequest, route: Route) -> Verdict:
    if route.server:
        return Verdict(True)
    settings = conf()
    limits = [
        ("proxy-ip", settings.proxy_rate_per_ip, client_ip(request)),
        ("proxy-visitor", settings.proxy_rate_per_visitor, existing_visitor_id(request)),
    ]
    return limits_hit(limits, settings.rate_limit_dir)
