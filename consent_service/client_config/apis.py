from __future__ import annotations

from django.middleware.csrf import get_token
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from consent_service.api.security import ConsentReadThrottle
from consent_service.api.views import ConsentApiView
from consent_service.client_config.selectors import client_config
from consent_service.client_config.serializers import ClientConfigSerializer
from consent_service.ledger.http import caller_from_request, external_subject_from_request
from consent_service.ledger.identified_ids import visitor_identity
from consent_service.ledger.services import consent_current


class AnalyticsConfigApi(ConsentApiView):
    # Read-only and open to every visitor (AllowAny: the schema shows cookieAuth as optional).
    # Authentication stays: without it DRF would overwrite request.user with AnonymousUser
    # and a login would never link.
    permission_classes = (AllowAny,)
    throttle_classes = [ConsentReadThrottle]

    @extend_schema(
        operation_id="analytics_config_retrieve",
        summary="posthog-js init options for the calling visitor",
        responses={200: ClientConfigSerializer},
    )
    def get(self, request: Request) -> Response:
        # The token the banner's POST needs, in the answer as well as the cookie: a host
        # project may keep its CSRF cookie from scripts (HttpOnly) or in the session.
        csrf_token = get_token(request._request)
        caller = caller_from_request(request._request)
        consent = consent_current(caller=caller)
        identity = visitor_identity(
            visitor_id=caller.visitor_id,
            user_id=caller.user.pk if caller.user else None,
            external_subject_id=external_subject_from_request(request._request),
        )
        config = client_config(
            consent=consent, identified_id=identity.identified_id, reset_identity=identity.reset
        )
        response = Response({**config, "csrf_token": csrf_token})
        response["Cache-Control"] = "private, no-store"
        patch_vary_headers(response, ["Cookie"])
        return response
