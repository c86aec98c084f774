from __future__ import annotations

from django.urls import path

from consent_service.consent.apis import ConsentApi, ConsentHistoryApi, ConsentWithdrawApi

urlpatterns = [
    path("consent/", ConsentApi.as_view(), name="consent"),
    path("consent/withdraw/", ConsentWithdrawApi.as_view(), name="consent-withdraw"),
    path("consent/history/", ConsentHistoryApi.as_view(), name="consent-history"),
]
