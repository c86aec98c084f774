"""The host's URLs: its own admin and login, and consent-service's parts included one by one
(the standalone project, config/urls.py, shows the single include)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from config.api import InternalReportApi

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("internal/reports/", InternalReportApi.as_view()),
    path("", include("consent_service.proxy.urls")),  # /ph/, the prefix is in the route
    path("api/v1/", include("consent_service.api.urls")),
    path("", include("consent_service.ops.urls")),  # /healthz, /readyz, /metrics
]
