"""Django-level error views: JSON envelope under /api/, Django's defaults elsewhere."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import csrf, defaults

from consent_service.api.errors import ErrorBody, json_error

API_PREFIX = "/api/"


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return json_error(request, 404, ErrorBody("not_found", "not_found", "Not found."))
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        body = ErrorBody("server_error", "server_error", "Internal server error.")
        return json_error(request, 500, body)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return json_error(request, 400, ErrorBody("client_error", "bad_request", "Bad request."))
    return defaults.bad_request(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        body = ErrorBody("permission_error", "csrf_failed", f"CSRF failed: {reason}")
        return json_error(request, 403, body)
    return csrf.csrf_failure(request, reason)
