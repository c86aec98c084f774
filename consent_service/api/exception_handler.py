"""Maps every exception raised under DRF to the one error envelope."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings

from consent_service.api.errors import ErrorBody, FieldError
from consent_service.core.exceptions import ServiceError

logger = logging.getLogger("consent_service.api")

TYPE_BY_EXCEPTION: list[tuple[type[Exception], str]] = [
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "validation_error"),
    (exceptions.NotAuthenticated, "authentication_error"),
    (exceptions.AuthenticationFailed, "authentication_error"),
    (exceptions.PermissionDenied, "permission_error"),
    (exceptions.NotFound, "not_found"),
    (exceptions.Throttled, "rate_limited"),
]


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    django_request = getattr(request, "_request", None)
    exc = _as_api_exception(exc)
    if isinstance(exc, ServiceError):
        body = ErrorBody(exc.error_type, exc.code, exc.detail, _attr_errors(exc), exc.extra)
        return Response(body.as_dict(django_request), status=exc.status_code)
    if not isinstance(exc, exceptions.APIException):
        return None  # unknown: DRF re-raises, Django logs it and handler500 answers
    response = Response(_api_body(exc).as_dict(django_request), status=exc.status_code)
    wait = getattr(exc, "wait", None)
    if wait is not None:
        response["Retry-After"] = str(int(wait) + 1)
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    return response


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        error = exceptions.APIException("Request body is too large.", code="body_too_large")
        error.status_code = 413
        return error
    return exc


def _api_body(exc: exceptions.APIException) -> ErrorBody:
    error_type = next((t for cls, t in TYPE_BY_EXCEPTION if isinstance(exc, cls)), "client_error")
    if isinstance(exc, exceptions.ValidationError):
        errors = list(_flatten(exc.detail, None))
        return ErrorBody(error_type, "invalid_input", "Invalid input.", errors)
    code = _code_of(exc.detail) or exc.default_code
    if exc.status_code >= 500:
        error_type = "server_error"
    return ErrorBody(error_type, code, str(exc.detail))


def _attr_errors(exc: ServiceError) -> list[FieldError]:
    return [FieldError(exc.attr, exc.code, exc.detail)] if exc.attr else []


def _flatten(detail: Any, prefix: str | None) -> Any:
    if isinstance(detail, dict):
        for key, value in detail.items():
            # DRF files an error of the whole object under the host's NON_FIELD_ERRORS_KEY.
            attr = None if key == api_settings.NON_FIELD_ERRORS_KEY else _join(prefix, str(key))
            yield from _flatten(value, attr if attr is not None else prefix)
    elif isinstance(detail, list):
        for item in detail:
            yield from _flatten(item, prefix)
    else:
        yield FieldError(prefix, _code_of(detail) or "invalid", str(detail))


def _join(prefix: str | None, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _code_of(detail: Any) -> str | None:
    return getattr(detail, "code", None)
