from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from consent_service.api.errors import ErrorSerializer
from consent_service.api.views import ConsentApiView
from consent_service.proxy import stats


class ProxyStatsSerializer(serializers.Serializer[Any]):
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Events forwarded and dropped (dropped.<reason>) by this process since start.",
    )


class ProxyStatsApi(ConsentApiView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="proxy_stats",
        summary="What the proxy forwarded and dropped, by reason (staff only, this process)",
        responses={
            200: ProxyStatsSerializer,
            403: OpenApiResponse(ErrorSerializer, description="Not staff."),
        },
    )
    def get(self, request: Request) -> Response:
        return Response({"counts": stats.snapshot()})
