from __future__ import annotations

from django.urls import path

from consent_service.client_config.apis import AnalyticsConfigApi

urlpatterns = [path("analytics/config/", AnalyticsConfigApi.as_view(), name="analytics-config")]
