"""The base classes every API view inherits: each sets its own DRF policies and formats, so a
host project's REST_FRAMEWORK changes nothing in our answers, and ours nothing in its."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.db.models import Model
from django.http import HttpRequest
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import OpenApiYamlRenderer, OpenApiYamlRenderer2
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authentication import BaseAuthentication
from rest_framework.filters import BaseFilterBackend
from rest_framework.generics import GenericAPIView
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import BasePagination
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from consent_service.api.exception_handler import handle_exception
from consent_service.api.formats import (
    ContentNegotiation,
    JsonParser,
    JsonRenderer,
    SchemaJsonRenderer,
    SchemaJsonRenderer2,
    drf_defaults,
)
from consent_service.api.schema import SCHEMA_SETTINGS, SCHEMA_URLCONF
from consent_service.api.security import SessionAuthentication

M = TypeVar("M", bound=Model)


class ConsentRequest(Request):
    """An anonymous caller is always AnonymousUser, whatever UNAUTHENTICATED_USER says: the
    ledger reads request.user.is_authenticated."""

    def _not_authenticated(self) -> None:
        self._authenticator = None
        self.user = AnonymousUser()
        self.auth = None


class ConsentApiView(APIView):
    authentication_classes: Sequence[type[BaseAuthentication]] = [SessionAuthentication]
    permission_classes: Sequence[type[BasePermission]] = [AllowAny]
    parser_classes: Sequence[type[BaseParser]] = [JsonParser]
    renderer_classes: Sequence[type[BaseRenderer]] = [JsonRenderer]
    throttle_classes: Sequence[type[BaseThrottle]] = []
    content_negotiation_class = ContentNegotiation
    metadata_class = SimpleMetadata
    versioning_class = None
    schema = AutoSchema()
    settings = drf_defaults  # the format suffix and OPTIONS' view name: DRF's, not the host's

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        # DRF reads EXCEPTION_HANDLER from the project's settings; ours is fixed.
        return handle_exception

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        return ConsentRequest(
            request,
            parsers=self.get_parsers(),
            authenticators=self.get_authenticators(),
            negotiator=self.get_content_negotiator(),
            parser_context=self.get_parser_context(request),
        )


# Comments, not docstrings, on these bases: drf-spectacular would publish a docstring as
# the description of every operation that inherits it.
class ConsentGenericApiView(ConsentApiView, GenericAPIView[M]):
    # A list view names its own pagination class; nothing else paginates or filters.
    pagination_class: type[BasePagination] | None = None
    filter_backends: Sequence[type[BaseFilterBackend]] = ()


class ConsentSchemaApi(SpectacularAPIView):
    # The OpenAPI document, open to everyone whatever the project's defaults.
    authentication_classes: Sequence[type[BaseAuthentication]] = [SessionAuthentication]
    permission_classes: Sequence[type[BasePermission]] = [AllowAny]
    throttle_classes: Sequence[type[BaseThrottle]] = []
    versioning_class = None
    renderer_classes: list[type[BaseRenderer]] = [
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
        SchemaJsonRenderer,
        SchemaJsonRenderer2,
    ]
    content_negotiation_class = ContentNegotiation
    settings = drf_defaults
    # Ours alone: not the host's URLs (its API may be private) nor its SPECTACULAR_SETTINGS.
    urlconf = SCHEMA_URLCONF
    custom_settings = SCHEMA_SETTINGS
    serve_public = True

    @extend_schema(exclude=True)  # whatever the host's SERVE_INCLUDE_SCHEMA
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        return response

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return handle_exception
