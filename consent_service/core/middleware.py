from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from consent_service.core.visitor import apply_visitor_cookie

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ATTR = "_consent_request_id"

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def request_id(request: HttpRequest) -> str:
    value: str | None = getattr(request, _ATTR, None)
    if value is None:
        value = _incoming_request_id(request) or uuid.uuid4().hex
        setattr(request, _ATTR, value)
    return value


def _incoming_request_id(request: HttpRequest) -> str | None:
    candidate = request.headers.get("X-Request-ID", "")
    return candidate if _REQUEST_ID.match(candidate) else None


class RequestIdMiddleware:
    """Tags every response with the id a record's evidence carries."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.headers["X-Request-ID"] = request_id(request)
        return response


class VisitorCookieMiddleware:
    """Sets the visitor cookie when a view used a new visitor or asked to renew it."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        apply_visitor_cookie(request, response)
        return response
