"""Every URL of consent-service for a host project: `path("", include("consent_service.urls"))`.

The API under api/v1/, the PostHog proxy (/ph/ by default), and /healthz, /readyz and
/metrics. The admin is the host's own; the standalone project (config/urls.py) adds its
landing page, the admin and the dev-only demo.
"""

from __future__ import annotations

from django.urls import include, path

from consent_service.proxy.urls import proxy_urls

urlpatterns = [
    *proxy_urls(),  # first: the busiest route resolves with the fewest comparisons
    path("", include("consent_service.ops.urls")),
    path("api/v1/", include("consent_service.api.urls")),
]
