"""POST /api/v1/identity/: a signed identity from the host app links this browser to its
user, as a Django login does. DELETE is the host app's logout: as after a Django logout, the
browser starts as a new visitor.

With no CONSENT_IDENTITY_SECRET both answer 404 (`identity_disabled`): the feature does not
exist on this deployment, which says nothing about the caller's rights (403 would)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from consent_service.api.errors import ErrorSerializer
from consent_service.api.security import ConsentWriteThrottle, CsrfForAllWrites
from consent_service.api.views import ConsentApiView
from consent_service.consent.signed_identity import IdentityDisabled, identity_verify
from consent_service.core.conf import conf
from consent_service.core.exceptions import ServiceError
from consent_service.core.visitor import renew_visitor_cookie, rotate_visitor
from consent_service.erasure.revocation import visitor_link_signed_identity
from consent_service.ledger.http import EXTERNAL_SUBJECT_SESSION_KEY, caller_from_request
from consent_service.ledger.identity import external_user_key


class IdentityLoggedIn(ServiceError):
    """A Django user is logged in: that login, not a signed identity, says who this is."""

    status_code = 409
    error_type = "conflict"
    code = "identity_user_logged_in"


class IdentityInputSerializer(serializers.Serializer[Any]):
    user_id = serializers.CharField(
        max_length=128,
        trim_whitespace=False,
        help_text="The host app's user id: 1 to 128 characters of A-Z a-z 0-9 . _ : @ + -",
    )
    signature = serializers.CharField(
        max_length=64,
        trim_whitespace=False,
        help_text="`v1.<issued_at>.<base64url HMAC-SHA256>` from the host app's backend "
        '(README "Signed identity").',
    )


ERRORS = {
    400: OpenApiResponse(
        ErrorSerializer, description="`identity_malformed`, or a field missing or too long."
    ),
    403: OpenApiResponse(
        ErrorSerializer,
        description="`identity_signature_invalid` (forged, another site's or an unknown "
        "secret), `identity_expired`, `identity_issued_in_future`, or `csrf_failed`.",
    ),
    404: OpenApiResponse(
        ErrorSerializer, description="`identity_disabled`: no CONSENT_IDENTITY_SECRET."
    ),
    409: OpenApiResponse(
        ErrorSerializer, description="`identity_user_logged_in`: a Django user is logged in."
    ),
    429: OpenApiResponse(ErrorSerializer, description="Too many writes from this client."),
}


class IdentityApi(ConsentApiView):
    permission_classes = [AllowAny, CsrfForAllWrites]

    def get_throttles(self) -> list[BaseThrottle]:
        return [ConsentWriteThrottle()]

    @extend_schema(
        operation_id="identity_create",
        summary="Link this browser to a host app user vouched for by a signed identity",
        request=IdentityInputSerializer,
        responses={204: OpenApiResponse(description="Linked: GET the config again."), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        _require_enabled()
        serializer = IdentityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        identity = identity_verify(user_id=data["user_id"], token=data["signature"])
        caller = caller_from_request(request._request)
        if caller.user is not None:
            raise IdentityLoggedIn("A Django user is logged in in this browser.")
        renew_visitor_cookie(request._request)
        subject_id = visitor_link_signed_identity(
            caller=caller,
            external_key=external_user_key(site=conf().identity_site, user_id=identity.user_id),
        )
        session = request._request.session
        session.cycle_key()  # as Django's login does: a planted session id gains nothing
        session[EXTERNAL_SUBJECT_SESSION_KEY] = subject_id
        return Response(status=204, headers={"Cache-Control": "private, no-store"})

    @extend_schema(
        operation_id="identity_destroy",
        summary="Forget the signed identity of this browser session (the host app's logout)",
        request=None,
        responses={204: OpenApiResponse(description="Forgotten."), **ERRORS},
    )
    def delete(self, request: Request) -> Response:
        _require_enabled()
        request._request.session.pop(EXTERNAL_SUBJECT_SESSION_KEY, None)
        # As a Django logout does: the browser may be someone else's now (a shared computer).
        rotate_visitor(request._request)
        return Response(status=204, headers={"Cache-Control": "private, no-store"})


def _require_enabled() -> None:
    if not conf().identity_secret:
        raise IdentityDisabled("Signed identity is not enabled on this service.")
