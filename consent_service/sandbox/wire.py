"""Request and response values passed between the HTTP handler and the route functions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    params: dict[str, str]  # first value of each query parameter
    headers: dict[str, str]  # names lower-cased
    body: bytes
    generation: int | None = None  # the store generation when the request arrived
    peer: str | None = None  # the socket peer's address

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    return Response(status, body, JSON, dict(headers or {}))


def capture_error(status: int, code: str, detail: str) -> Response:
    """The capture service's error body (PROTOCOL 3.3)."""
    return json_response(status, {"status": status, "code": code, "error": detail})


class CaptureError(Exception):
    """A refusal of the capture service, with PostHog's status and code (its `api.rs`)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def response(self) -> Response:
        return capture_error(self.status, self.code, self.detail)


def decoding_error(detail: str) -> CaptureError:
    return CaptureError(400, "request_decoding_error", f"failed to decode request: {detail}")


def parsing_error(detail: str) -> CaptureError:
    return CaptureError(400, "request_parsing_error", f"failed to parse request: {detail}")


def too_big(detail: str) -> CaptureError:
    return CaptureError(413, "payload_too_large", f"maximum event size exceeded: {detail}")


class ApiError(Exception):
    """A DRF-style error of PostHog's private API: {type, code, detail, attr}."""

    def __init__(self, status: int, type_: str, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.type, self.code, self.detail = status, type_, code, detail

    def response(self) -> Response:
        body = {"type": self.type, "code": self.code, "detail": self.detail, "attr": None}
        return json_response(self.status, body)


def validation_error(detail: str) -> ApiError:
    return ApiError(400, "validation_error", "invalid_input", detail)


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, "invalid_request", "not_found", detail)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.')


def error_for_path(path: str, status: int, code: str, detail: str) -> Response:
    """Private API paths answer DRF-style, everything else capture-style."""
    if path.startswith("/api/"):
        return ApiError(status, _api_error_type(status), code, detail).response()
    return capture_error(status, code, detail)


def _api_error_type(status: int) -> str:
    if status in (401, 403):
        return "authentication_error"
    if status == 429:
        return "throttled_error"
    return "server_error" if status >= 500 else "invalid_request"
