"""The consent API: read, decide, withdraw, history. Each view parses, calls one service,
and shapes output; errors are raised and rendered by the one exception handler. The writes
call the erasure layer's write paths, since turning analytics off erases."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.mixins import ListModelMixin
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.utils.mediatypes import media_type_matches

from consent_service.api.errors import ErrorSerializer
from consent_service.api.security import (
    ConsentReadThrottle,
    ConsentWriteThrottle,
    CsrfForAllWrites,
)
from consent_service.api.views import ConsentApiView, ConsentGenericApiView
from consent_service.core.visitor import renew_visitor_cookie, visitor_for
from consent_service.erasure.revocation import consent_decide, consent_withdraw
from consent_service.ledger.chain import canonical_json
from consent_service.ledger.http import caller_from_request
from consent_service.ledger.idempotency import (
    IdempotencyClaim,
    idempotency_claim,
    idempotency_release,
)
from consent_service.ledger.selectors import consent_payload
from consent_service.ledger.serializers import (
    ConsentDecisionInputSerializer,
    ConsentRecordSerializer,
    ConsentStateSerializer,
    ConsentWithdrawInputSerializer,
)
from consent_service.ledger.services import consent_current, consent_history

if TYPE_CHECKING:  # generic to the type checker only
    from consent_service.ledger.models import ConsentRecord

    HistoryApiBase = ConsentGenericApiView[ConsentRecord]
else:
    HistoryApiBase = ConsentGenericApiView

NO_STORE = {"Cache-Control": "private, no-store"}
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retry safe: a replay returns the stored response (with "
    "`Idempotent-Replayed: true`), another body with the same key gets 422, a duplicate "
    "still in flight gets 409.",
)
ERRORS = {
    400: OpenApiResponse(
        ErrorSerializer,
        description="Invalid input; `invalid_distinct_id`: a distinct_id nobody holds that a "
        "browser may not claim.",
    ),
    403: OpenApiResponse(ErrorSerializer, description="CSRF check failed."),
    409: OpenApiResponse(
        ErrorSerializer,
        description="`stale_policy_version`, `distinct_id_taken` (the distinct_id is another "
        "person's; nothing was written) or `idempotency_key_in_flight`.",
    ),
    415: OpenApiResponse(ErrorSerializer, description="Body is not JSON."),
    422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused with another body."),
    429: OpenApiResponse(ErrorSerializer, description="Too many writes from this client."),
}


class WriteThrottled(ConsentApiView):
    def get_throttles(self) -> list[BaseThrottle]:
        if self.request.method == "POST":
            return [ConsentWriteThrottle()]
        return [ConsentReadThrottle()]


class ConsentApi(WriteThrottled):
    # AllowAny: every visitor, logged in or not (the schema shows cookieAuth as optional).
    permission_classes = [AllowAny, CsrfForAllWrites]

    @extend_schema(
        operation_id="consent_retrieve",
        summary="The calling visitor's current consent",
        responses={200: ConsentStateSerializer},
    )
    def get(self, request: Request) -> Response:
        view = consent_current(caller=caller_from_request(request._request))
        return Response(consent_payload(view), headers=NO_STORE)

    @extend_schema(
        operation_id="consent_create",
        summary="Record the visitor's decision",
        request=ConsentDecisionInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: ConsentStateSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def write(claim: IdempotencyClaim | None) -> dict[str, Any]:
            serializer = ConsentDecisionInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            return consent_decide(
                caller=caller_from_request(request._request),
                choices=data["purposes"],
                policy_version=data["policy_version"],
                source=data["source"],
                distinct_id=data.get("distinct_id"),
                idempotency=claim,
            )

        return idempotent_write(request, write)


class ConsentWithdrawApi(WriteThrottled):
    permission_classes = [AllowAny, CsrfForAllWrites]

    @extend_schema(
        operation_id="consent_withdraw",
        summary="Withdraw consent for every purpose in one call",
        request=ConsentWithdrawInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: ConsentStateSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def write(claim: IdempotencyClaim | None) -> dict[str, Any]:
            serializer = ConsentWithdrawInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            return consent_withdraw(
                caller=caller_from_request(request._request),
                source=serializer.validated_data["source"],
                idempotency=claim,
            )

        return idempotent_write(request, write)


class HistoryPagination(CursorPagination):
    ordering = "-seq"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class ConsentHistoryApi(ListModelMixin, HistoryApiBase):
    throttle_classes = [ConsentReadThrottle]
    serializer_class = ConsentRecordSerializer
    pagination_class = HistoryPagination

    @extend_schema(
        operation_id="consent_history",
        summary="The calling visitor's own consent records, newest first",
        responses={
            200: ConsentRecordSerializer(many=True),
            404: OpenApiResponse(ErrorSerializer, description="Invalid cursor."),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = self.list(request, *args, **kwargs)
        response["Cache-Control"] = NO_STORE["Cache-Control"]
        return response

    def get_queryset(self) -> QuerySet[ConsentRecord]:
        return consent_history(caller=caller_from_request(self.request._request))


def idempotent_write(
    request: Request, write: Callable[[IdempotencyClaim | None], dict[str, Any]]
) -> Response:
    _refuse_unparsable_body(request)
    renew_visitor_cookie(request._request)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return Response(write(None), status=201, headers=NO_STORE)
    if not _KEY_PATTERN.match(key):
        raise exceptions.ValidationError(
            {"Idempotency-Key": ["Must be 1 to 255 visible ASCII characters."]}
        )
    claim = IdempotencyClaim(scope=f"visitor:{visitor_for(request._request).id}", key=key)
    stored = idempotency_claim(claim=claim, fingerprint=_fingerprint(request))
    if stored is not None:
        return Response(
            stored.body, status=stored.status, headers={**NO_STORE, "Idempotent-Replayed": "true"}
        )
    try:
        body = write(claim)
    except BaseException:
        idempotency_release(claim=claim)
        raise
    return Response(body, status=201, headers=NO_STORE)


def _refuse_unparsable_body(request: Request) -> None:
    """Once the CSRF check has read a multipart body, DRF parses it as empty instead of
    refusing it, so a form POST to withdraw would succeed; refuse any body no parser takes."""
    if request.META.get("CONTENT_LENGTH", "") in {"", "0"}:
        return
    accepted = [parser.media_type for parser in request.parsers or () if parser.media_type]
    if not any(media_type_matches(media, request.content_type) for media in accepted):
        raise exceptions.UnsupportedMediaType(request.content_type)


def _fingerprint(request: Request) -> str:
    payload = [request.method, request.path, request.data]
    return hashlib.sha256(canonical_json(payload)).hexdigest()
