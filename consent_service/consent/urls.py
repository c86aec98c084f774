from __future__ import annotations

from django.urls import path

from consent_service.consent.apis import ConsentApi, ConsentHistoryApi, ConsentWithdrawApi
from consent_service.consent.identity_apis import IdentityApi
from consent_service.consent.receipt_apis import ConsentReceiptApi, ConsentReceiptKeyApi

urlpatterns = [
    path("consent/", ConsentApi.as_view(), name="consent"),
    path("consent/withdraw/", ConsentWithdrawApi.as_view(), name="consent-withdraw"),
    path("consent/history/", ConsentHistoryApi.as_view(), name="consent-history"),
    path("consent/receipts/key/", ConsentReceiptKeyApi.as_view(), name="consent-receipt-key"),
    path(
        "consent/receipts/<str:receipt_id>/",
        ConsentReceiptApi.as_view(),
        name="consent-receipt",
    ),
    path("identity/", IdentityApi.as_view(), name="identity"),
]
