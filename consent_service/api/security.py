"""CSRF for every cookie-authenticated write, and write throttles keyed on the real client."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from consent_service.core.network import client_ip


def _no_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def csrf_check(request: HttpRequest) -> None:
    check = CSRFCheck(_no_response)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    if reason:
        raise exceptions.PermissionDenied(f"CSRF failed: {reason}", code="csrf_failed")


class CsrfForAllWrites(BasePermission):
    """DRF checks CSRF only for session-authenticated users; the visitor cookie is an
    ambient credential too, so anonymous writes get the same check."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in SAFE_METHODS:
            csrf_check(request._request)
        return True


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's own check answers a logged-in user's CSRF failure with code permission_denied;
    this one gives every CSRF failure the same csrf_failed code."""

    def enforce_csrf(self, request: Request) -> None:
        csrf_check(request._request)


class SessionAuthenticationScheme(SessionScheme):  # type: ignore[no-untyped-call]
    """Documents the subclass as drf-spectacular documents DRF's (cookieAuth)."""

    target_class = "consent_service.api.security.SessionAuthentication"


class ConsentWriteThrottle(SimpleRateThrottle):
    scope = "consent_write"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request._request)}
