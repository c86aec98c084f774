from __future__ import annotations

from django.urls import path

from consent_service.erasure.apis import ErasureRequestDetailApi, ErasureRequestListApi

urlpatterns = [
    path("erasure-requests/", ErasureRequestListApi.as_view(), name="erasure-requests"),
    path(
        "erasure-requests/<int:id>/",
        ErasureRequestDetailApi.as_view(),
        name="erasure-request-detail",
    ),
]
