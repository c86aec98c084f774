"""The host's own DRF exception handler: a shape unlike consent-service's envelope."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"host_error": response.data}
    return response


class InternalReportApi(APIView):
    """One of the host's own API views: staff-only, and none of consent-service's business."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        return Response({"report": "internal"})
