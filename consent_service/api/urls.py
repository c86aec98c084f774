from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("", include("consent_service.ledger.urls")),
    path("", include("consent_service.client_config.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
