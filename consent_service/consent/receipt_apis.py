"""Consent receipts over HTTP: the caller's own receipts, and the key that verifies them."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from consent_service.api.errors import ErrorSerializer
from consent_service.api.security import ConsentReadThrottle
from consent_service.api.views import ConsentApiView
from consent_service.consent.receipts import ALG, b64url, receipt_document, signing_key
from consent_service.ledger.http import caller_from_request
from consent_service.ledger.services import consent_history

RECEIPT_ID = re.compile(r"^[0-9a-f]{64}$")
UNAVAILABLE = OpenApiResponse(
    ErrorSerializer, description="`receipts_unavailable`: no signing key is configured."
)


class ReceiptSignatureSerializer(serializers.Serializer[Any]):
    alg = serializers.CharField(help_text="Always Ed25519.")
    key_id = serializers.CharField(help_text="RFC 7638 thumbprint of the signing key.")
    value = serializers.CharField(
        help_text="Unpadded base64url Ed25519 signature over the canonical JSON of `receipt`."
    )


class ReceiptDocumentSerializer(serializers.Serializer[Any]):
    receipt = serializers.DictField(
        help_text="receipt_version, receipt_id, consent_timestamp, controller, jurisdiction, "
        "subject, action, collection_method, gpc, purposes, policy, ledger_seq (README "
        "'Consent receipts')."
    )
    signature = ReceiptSignatureSerializer(help_text="The service's signature.")


class ReceiptKeySerializer(serializers.Serializer[Any]):
    alg = serializers.CharField(help_text="Always Ed25519.")
    key_id = serializers.CharField(help_text="RFC 7638 thumbprint, as in each signature.")
    public_key = serializers.CharField(help_text="The raw 32-byte public key, base64url.")
    public_key_pem = serializers.CharField(help_text="The same key as SubjectPublicKeyInfo PEM.")


class ConsentReceiptApi(ConsentApiView):
    permission_classes = [AllowAny]
    throttle_classes = [ConsentReadThrottle]

    @extend_schema(
        operation_id="consent_receipt_retrieve",
        summary="A signed receipt of one of the calling visitor's consent records",
        description="The id is the record's `hash` (consent history). Another visitor's "
        "record, or no record, is the same 404.",
        responses={
            200: ReceiptDocumentSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such receipt for you."),
            503: UNAVAILABLE,
        },
    )
    def get(self, request: Request, receipt_id: str) -> HttpResponse:
        signing_key()  # 503 before any lookup: the answer never depends on the id then
        record = None
        if RECEIPT_ID.match(receipt_id):
            caller = caller_from_request(request._request)
            mine = consent_history(caller=caller).select_related("subject")
            record = mine.filter(hash=receipt_id).first()
        if record is None:
            raise exceptions.NotFound()
        response = HttpResponse(receipt_document(record=record), content_type="application/json")
        response["Cache-Control"] = "private, no-store"
        filename = f"consent-receipt-{record.seq}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ConsentReceiptKeyApi(ConsentApiView):
    permission_classes = [AllowAny]
    throttle_classes = [ConsentReadThrottle]

    @extend_schema(
        operation_id="consent_receipt_key",
        summary="The public key that verifies consent receipts",
        responses={200: ReceiptKeySerializer, 503: UNAVAILABLE},
    )
    def get(self, request: Request) -> Response:
        key = signing_key()
        body = {
            "alg": ALG,
            "key_id": key.key_id,
            "public_key": b64url(key.public_raw),
            "public_key_pem": key.public_pem(),
        }
        return Response(body, headers={"Cache-Control": "public, max-age=3600"})
