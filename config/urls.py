from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from consent_service.core.views import index

urlpatterns = [
    # As a host project includes it; first: the proxy resolves with the fewest comparisons.
    path("", include("consent_service.urls")),
    path("", index, name="index"),
    path("admin/", admin.site.urls),
]
if settings.CONSENT_DEV_TOOLS:
    urlpatterns.append(path("demo/", include("consent_service.demo.urls")))

handler400 = "consent_service.api.handlers.bad_request"
handler404 = "consent_service.api.handlers.not_found"
handler500 = "consent_service.api.handlers.server_error"
