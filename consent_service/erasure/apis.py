"""The staff erasure API: request erasure of a subject, follow requests through their calls.

Staff only, session-authenticated: writes need the CSRF token like any other cookie write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from consent_service.api.errors import ErrorSerializer
from consent_service.api.security import CsrfForAllWrites
from consent_service.api.views import ConsentApiView, ConsentGenericApiView
from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.revocation import erasure_request_subject
from consent_service.erasure.serializers import (
    ErasureRequestCreateInputSerializer,
    ErasureRequestDetailSerializer,
    ErasureRequestFilterSerializer,
    ErasureRequestSerializer,
)
from consent_service.ledger.selectors import (
    subject_by_distinct_id,
    subject_by_user,
    subject_by_uuid,
    subject_joined,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from consent_service.ledger.models import Subject

NO_STORE = {"Cache-Control": "private, no-store"}
NOT_STAFF = OpenApiResponse(
    ErrorSerializer, description="Not logged in as staff, or CSRF check failed."
)


class ErasureRequestPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class ErasureRequestListApi(ConsentGenericApiView[ErasureRequest]):
    permission_classes = [IsAdminUser, CsrfForAllWrites]
    pagination_class = ErasureRequestPagination
    serializer_class = ErasureRequestSerializer

    @extend_schema(
        operation_id="erasure_requests_list",
        summary="Erasure requests, newest first (staff only)",
        parameters=[ErasureRequestFilterSerializer],
        responses={
            200: ErasureRequestSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="Unknown status."),
            403: NOT_STAFF,
            404: OpenApiResponse(ErrorSerializer, description="Invalid cursor."),
        },
    )
    def get(self, request: Request) -> Response:
        filters = ErasureRequestFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(_requests(status=filters.validated_data.get("status")))
        response = self.get_paginated_response(ErasureRequestSerializer(page, many=True).data)
        response["Cache-Control"] = NO_STORE["Cache-Control"]
        return response

    @extend_schema(
        operation_id="erasure_requests_create",
        summary="Withdraw a subject's consent and erase it from PostHog (GDPR Art. 17)",
        description="Give exactly one of user_id, subject_id or distinct_id. A subject with "
        "a request already waiting gets that request back, with this note added to it.",
        request=ErasureRequestCreateInputSerializer,
        responses={
            201: ErasureRequestDetailSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Invalid input."),
            403: NOT_STAFF,
            404: OpenApiResponse(ErrorSerializer, description="No subject matches the target."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ErasureRequestCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = erasure_request_subject(
            subject=_target_subject(data),
            reason=ErasureRequest.Reason.API,
            requested_by=_staff_user(request),
            note=data["note"],
        )
        body = ErasureRequestDetailSerializer(_request_with_calls(created.pk)).data
        return Response(body, status=201, headers=NO_STORE)


class ErasureRequestDetailApi(ConsentApiView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="erasure_requests_retrieve",
        summary="One erasure request with every call made to PostHog (staff only)",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Its id.")],
        responses={
            200: ErasureRequestDetailSerializer,
            403: NOT_STAFF,
            404: OpenApiResponse(ErrorSerializer, description="No such request."),
        },
    )
    def get(self, request: Request, id: int) -> Response:
        return Response(
            ErasureRequestDetailSerializer(_request_with_calls(id)).data, headers=NO_STORE
        )


def _requests(*, status: str | None) -> QuerySet[ErasureRequest]:
    requests = ErasureRequest.objects.select_related("subject")
    return requests.filter(status=status) if status else requests


def _request_with_calls(pk: int) -> ErasureRequest:
    found = (
        ErasureRequest.objects.select_related("subject")
        .prefetch_related("calls")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise exceptions.NotFound("No such erasure request.")
    return found


def _target_subject(data: dict[str, Any]) -> Subject:
    """The subject named by the one target given; a merged subject's is the one it joined."""
    subject: Subject | None
    if "user_id" in data:
        subject = subject_by_user(user_id=data["user_id"])
    elif "subject_id" in data:
        subject = subject_by_uuid(uuid=data["subject_id"])
    else:
        subject = subject_by_distinct_id(distinct_id=data["distinct_id"])
    if subject is None:
        raise exceptions.NotFound("No subject matches this target.", code="unknown_subject")
    return subject_joined(subject)


def _staff_user(request: Request) -> User:
    user = request.user
    if not isinstance(user, get_user_model()):
        raise exceptions.PermissionDenied()
    return user
