"""The one error envelope: every 4xx/5xx the API returns has this shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import serializers

from consent_service.core.middleware import request_id


@dataclass
class FieldError:
    attr: str | None
    code: str
    detail: str


@dataclass
class ErrorBody:
    type: str
    code: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, request: HttpRequest | None) -> dict[str, Any]:
        first_attr = self.errors[0].attr if self.errors else None
        return {
            "type": self.type,
            "code": self.code,
            "detail": self.detail,
            "attr": first_attr,
            "errors": [vars(error) for error in self.errors],
            "extra": self.extra,
            "request_id": request_id(request) if request is not None else None,
        }


def json_error(request: HttpRequest, status: int, body: ErrorBody) -> JsonResponse:
    return JsonResponse(body.as_dict(request), status=status)


class FieldErrorSerializer(serializers.Serializer[Any]):
    attr = serializers.CharField(
        allow_null=True, help_text="Dotted path of the offending field, or null."
    )
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    detail = serializers.CharField(help_text="Human-readable message.")


class ErrorSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(
        help_text="Error category: validation_error, client_error, authentication_error, "
        "permission_error, not_found, conflict, unprocessable, rate_limited, server_error."
    )
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    detail = serializers.CharField(help_text="Human-readable summary.")
    attr = serializers.CharField(allow_null=True, help_text="The first offending field, if any.")
    errors = FieldErrorSerializer(  # type: ignore[assignment]
        many=True, help_text="Every field error (may be empty)."
    )
    extra = serializers.DictField(help_text="Error-specific data, e.g. current_policy_version.")
    request_id = serializers.CharField(
        allow_null=True, help_text="Echo of X-Request-ID for support."
    )
