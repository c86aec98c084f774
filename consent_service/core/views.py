from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def index(request: HttpRequest) -> JsonResponse:
    """A landing answer for `make run`: what is served where."""
    return JsonResponse(
        {
            "service": "consent-service",
            "endpoints": {
                "config": "/api/v1/analytics/config/",
                "consent": "/api/v1/consent/",
                "withdraw": "/api/v1/consent/withdraw/",
                "history": "/api/v1/consent/history/",
                "schema": "/api/v1/schema/",
                "admin": "/admin/",
            },
        }
    )
