"""CSRF for every cookie-authenticated write, and throttles keyed on the real client."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from consent_service.core.cache import consent_cache
from consent_service.core.conf import conf
from consent_service.core.network import client_ip
from consent_service.core.rate_limits import limits_hit
from consent_service.core.visitor import existing_visitor_id


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

    def __init__(self) -> None:
        self.cache = consent_cache()  # shared by every worker, unlike a per-process default
        super().__init__()

    def get_rate(self) -> str | None:
        # Our own setting: DRF's THROTTLE_RATES belongs to the host project. 0: no limit.
        rate = conf().write_rate
        return None if rate in {"", "0"} else rate

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request._request)}


class ConsentReadThrottle(BaseThrottle):
    """The consent and config GETs, per client address and per visitor (429 when over)."""

    retry_after = 0

    def allow_request(self, request: Request, view: Any) -> bool:
        settings = conf()
        limits = [
            ("read-ip", settings.read_rate_per_ip, client_ip(request._request)),
            ("read-visitor", settings.read_rate_per_visitor, existing_visitor_id(request._request)),
        ]
        verdict = limits_hit(limits, settings.rate_limit_dir)
        self.retry_after = verdict.retry_after
        return verdict.allowed

    def wait(self) -> float:
        return self.retry_after
