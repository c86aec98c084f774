from __future__ import annotations

from django.urls import include, path

from consent_service.api.views import ConsentSchemaApi
from consent_service.proxy.apis import ProxyStatsApi

urlpatterns = [
    path("", include("consent_service.consent.urls")),
    path("", include("consent_service.client_config.urls")),
    path("", include("consent_service.erasure.urls")),
    path("proxy/stats/", ProxyStatsApi.as_view(), name="proxy-stats"),
    path("schema/", ConsentSchemaApi.as_view(), name="schema"),
]
