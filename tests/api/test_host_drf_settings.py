"""Installed in a host project, our API answers the same whatever the host's REST_FRAMEWORK
says, and our views leave the host's own DRF views alone.

DRF binds a view's default policies (APIView.renderer_classes, throttle_classes, ...), the
throttle rates and the JSON renderer's and parser's options when rest_framework is imported,
from the host's settings; override_settings alone only reloads api_settings.
`host_drf_settings()` does both, as a host project would."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import override_settings
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer, JSONOpenAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from tests.api.contract import ENVELOPE_KEYS
from tests.conftest import CONSENT_URL, GRANT_ALL, WITHDRAW_URL, Visitor, logged_in

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


class HostPagination(PageNumberPagination):
    page_size = 1


class HostThrottle(SimpleRateThrottle):
    """One request a day from anyone, logged in or not."""

    scope = "host"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": "everyone"}


def host_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    return Response({"host_error": str(exc)}, status=418)


def host_view_name(view: Any) -> str:
    return "Named by the host"


HOST_REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.BrowsableAPIRenderer",
        "rest_framework.renderers.JSONRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.JSONParser",
    ],
    "DEFAULT_PAGINATION_CLASS": f"{__name__}.HostPagination",
    "PAGE_SIZE": 1,
    "EXCEPTION_HANDLER": f"{__name__}.host_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [f"{__name__}.HostThrottle"],
    "DEFAULT_THROTTLE_RATES": {"host": "1/day"},
    "UNAUTHENTICATED_USER": None,
    # Output and format settings: not one byte of our answers may change with them.
    "DATETIME_FORMAT": "%d/%m/%Y %H:%M",
    "DATETIME_INPUT_FORMATS": ["%d/%m/%Y %H:%M"],
    "DATE_FORMAT": "%d/%m/%Y",
    "DATE_INPUT_FORMATS": ["%d/%m/%Y"],
    "TIME_FORMAT": "%H:%M",
    "TIME_INPUT_FORMATS": ["%H:%M"],
    "COERCE_DECIMAL_TO_STRING": False,
    "UNICODE_JSON": False,
    "COMPACT_JSON": False,
    "STRICT_JSON": False,
    "NON_FIELD_ERRORS_KEY": "errors",
    "URL_FORMAT_OVERRIDE": "fmt",
    "FORMAT_SUFFIX_KWARG": "id",  # DRF reads it from every view's URL kwargs
    "VIEW_NAME_FUNCTION": f"{__name__}.host_view_name",
}


@contextmanager
def host_drf_settings() -> Iterator[None]:
    with (
        override_settings(REST_FRAMEWORK=HOST_REST_FRAMEWORK),
        pytest.MonkeyPatch.context() as patch,
    ):
        assert api_settings.EXCEPTION_HANDLER is host_exception_handler  # reloaded by DRF
        patch.setattr(APIView, "authentication_classes", [BasicAuthentication])
        patch.setattr(APIView, "permission_classes", [IsAuthenticated])
        patch.setattr(APIView, "renderer_classes", [BrowsableAPIRenderer, JSONRenderer])
        patch.setattr(APIView, "parser_classes", [FormParser, JSONParser])
        patch.setattr(APIView, "throttle_classes", [HostThrottle])
        patch.setattr(GenericAPIView, "pagination_class", HostPagination)
        patch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"host": "1/day"})
        # The JSON options, as rest_framework.renderers and .parsers bind them at import.
        patch.setattr(JSONRenderer, "ensure_ascii", not api_settings.UNICODE_JSON)
        patch.setattr(JSONRenderer, "compact", api_settings.COMPACT_JSON)
        patch.setattr(JSONRenderer, "strict", api_settings.STRICT_JSON)
        patch.setattr(JSONOpenAPIRenderer, "ensure_ascii", not api_settings.UNICODE_JSON)
        patch.setattr(JSONParser, "strict", api_settings.STRICT_JSON)
        yield


@pytest.fixture
def host_drf_defaults() -> Iterator[None]:
    with host_drf_settings():
        yield


def _outline(response: Any) -> tuple[Any, ...]:
    """What must not change: status, content type, and the body's shape and codes."""
    content_type = response.get("Content-Type")
    if not content_type or "json" not in content_type:
        return (response.status_code, content_type)
    body = response.json()
    if isinstance(body, dict) and set(body) == ENVELOPE_KEYS:
        return (response.status_code, content_type, "error", body["type"], body["code"])
    if isinstance(body, dict) and "results" in body:
        return (response.status_code, content_type, sorted(body), len(body["results"]))
    return (response.status_code, content_type, sorted(body) if isinstance(body, dict) else body)


def _every_operation(staff: Any) -> list[tuple[Any, ...]]:
    visitor = Visitor()
    outlines = [
        visitor.config(),
        visitor.consent(),
        visitor.decide(GRANT_ALL),
        visitor.decide(GRANT_ALL),
        visitor.decide({"analytics": "maybe"}),
        visitor.client.post(WITHDRAW_URL, "{}", content_type="application/json"),  # no CSRF
        visitor.post(
            WITHDRAW_URL, "source=banner", content_type="application/x-www-form-urlencoded"
        ),
        visitor.withdraw(),
        visitor.history(),
        visitor.history(page_size="1"),
        visitor.client.get("/api/v1/consent/receipts/key/"),
        visitor.client.get(f"/api/v1/consent/receipts/{'0' * 64}/"),
        visitor.post("/api/v1/identity/", {"user_id": "u1", "signature": "v1.x.y"}),
        visitor.client.get("/api/v1/erasure-requests/"),
        visitor.client.get("/api/v1/erasure-requests/1/"),
        visitor.client.get("/api/v1/proxy/stats/"),
        visitor.client.get("/api/v1/schema/"),
        visitor.client.get("/api/v1/no-such-thing/"),
    ]
    admin = Visitor()
    admin.client.force_login(staff)
    outlines += [
        admin.client.get("/api/v1/erasure-requests/"),
        admin.client.get("/api/v1/erasure-requests/999/"),
        admin.client.post("/api/v1/erasure-requests/", "{}", content_type="application/json"),
        admin.post("/api/v1/erasure-requests/", {"user_id": "404"}),
        admin.client.get("/api/v1/proxy/stats/"),
    ]
    return [_outline(response) for response in outlines]


def test_every_operation_answers_the_same_under_odd_host_defaults(
    django_user_model: Any, request: pytest.FixtureRequest
) -> None:
    staff = django_user_model.objects.create_user("root", is_staff=True, password="pw-12345678")
    ours = _every_operation(staff)
    request.getfixturevalue("host_drf_defaults")

    under_host = _every_operation(staff)

    assert under_host == ours
    statuses = [outline[0] for outline in ours]
    assert statuses[:9] == [200, 200, 201, 201, 400, 403, 415, 201, 200]
    assert ours[5][3:] == ("permission_error", "csrf_failed")  # writes still CSRF-checked
    assert ours[9][3] == 1 and ours[8][3] == 3  # our page size, not the host's


def test_the_write_rate_is_ours_not_the_hosts(host_drf_defaults: None, settings: Any) -> None:
    settings.CONSENT_WRITE_RATE = "2/min"
    visitor = Visitor()
    assert [visitor.decide(GRANT_ALL).status_code for _ in range(3)] == [201, 201, 429]
    assert visitor.decide(GRANT_ALL).json()["type"] == "rate_limited"


def _both(call: Callable[[], Any]) -> tuple[Any, Any]:
    """The same call without the host's settings, then under them."""
    ours = call()
    with host_drf_settings():
        under_host = call()
    return _exactly(ours), _exactly(under_host)


def _exactly(response: Any) -> tuple[int, str | None, bytes]:
    # The config's CSRF token is masked afresh on every call, whatever the settings.
    content = re.sub(rb'"csrf_token":"[^"]*"', b'"csrf_token":"-"', response.content)
    return (response.status_code, response.get("Content-Type"), content)


def test_every_answer_is_the_same_bytes_under_odd_host_output_settings(
    django_user_model: Any, time_machine: Any
) -> None:
    time_machine.move_to(datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC), tick=False)
    request_id = {"X-Request-ID": "req-1"}
    visitor = Visitor(**request_id)
    visitor.config()  # the cookies, so both calls below find the same browser
    pairs = [
        _both(visitor.config),
        _both(visitor.consent),
        _both(lambda: visitor.decide(GRANT_ALL)),
        _both(lambda: visitor.decide({"analytics": "maybe"})),  # a field's error
        _both(lambda: visitor.post(CONSENT_URL, [])),  # a non-field error
        _both(lambda: visitor.post(CONSENT_URL, '{"purposes": {"analytics": NaN}}')),
        _both(lambda: visitor.client.get(CONSENT_URL, {"format": "api"})),
        _both(lambda: visitor.client.get(CONSENT_URL, {"fmt": "api"})),
        _both(lambda: visitor.client.options(CONSENT_URL)),
        _both(visitor.history),
        _both(lambda: visitor.client.get("/api/v1/schema/", {"format": "json"})),
    ]
    user = django_user_model.objects.create_user("someone")
    logged_in(user).decide(GRANT_ALL)
    staff = django_user_model.objects.create_user("root", is_staff=True)
    admin = Visitor(**request_id)
    admin.client.force_login(staff)
    with host_drf_settings():
        created = admin.post("/api/v1/erasure-requests/", {"user_id": user.pk, "note": "café ✓"})
    detail_url = f"/api/v1/erasure-requests/{created.json()['id']}/"
    pairs += [
        _both(lambda: admin.post("/api/v1/erasure-requests/", {})),  # a non-field error
        _both(lambda: admin.client.get("/api/v1/erasure-requests/")),
        _both(lambda: admin.client.get(detail_url)),
    ]

    assert [under_host for _, under_host in pairs] == [ours for ours, _ in pairs]
    assert created.content == admin.client.get(detail_url).content
    statuses = [ours[0] for ours, _ in pairs]
    assert statuses == [200, 200, 201, 400, 400, 400, 404, 200, 200, 200, 200, 400, 200, 200]
    assert "café ✓".encode() in created.content  # UTF-8, not \u escapes
    assert b'"created_at":"2026-05-04T03:02:01.123456Z"' in created.content


class HostView(APIView):
    def get(self, request: Request) -> Response:
        raise exceptions.NotFound("host thing")


def test_a_host_view_keeps_drf_defaults_without_our_settings() -> None:
    response = HostView.as_view()(APIRequestFactory().get("/host/"))

    assert response.status_code == 404
    assert response.data == {"detail": "host thing"}  # DRF's handler, not our envelope
    assert api_settings.EXCEPTION_HANDLER.__module__ == "rest_framework.views"


def test_a_host_view_gets_the_hosts_defaults(host_drf_defaults: None) -> None:
    response = HostView.as_view()(APIRequestFactory().get("/host/"))

    assert response.status_code == 418
    assert response.data == {"host_error": "Authentication credentials were not provided."}
