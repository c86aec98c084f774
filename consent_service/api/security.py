"""CSRF for every cookie-authenticated write, and write throttles keyed on the real client."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from consent_service.core.network import client_ip


def _no_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


class CsrfForAllWrites(BasePermission):
    """DRF checks CSRF only for session-authenticated users; the visitor cookie is an
    ambient credential too, so anonymous writes get the same check."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        check = CSRFCheck(_no_response)
        django_request = request._request
        check.process_request(django_request)
        reason = check.process_view(django_request, None, (), {})  # type: ignore[arg-type]
        if reason:
            raise exceptions.PermissionDenied(f"CSRF failed: {reason}", code="csrf_failed")
        return True


class ConsentWriteThrottle(SimpleRateThrottle):
    scope = "consent_write"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request._request)}
