from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from consent_service.core.views import index
from consent_service.proxy.urls import proxy_urls

urlpatterns = [
    *proxy_urls(),  # first: the busiest route resolves with the fewest comparisons
    path("", index, name="index"),
    path("", include("consent_service.ops.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("consent_service.api.urls")),
]
if settings.CONSENT_DEV_TOOLS:
    urlpatterns.append(path("demo/", include("consent_service.demo.urls")))

handler400 = "consent_service.api.handlers.bad_request"
handler404 = "consent_service.api.handlers.not_found"
handler500 = "consent_service.api.handlers.server_error"
