"""What the served OpenAPI document covers: our API at api/v1/, and nothing of the host's."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("api/v1/", include("consent_service.api.urls"))]
