"""Input and output shapes of the staff erasure API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from consent_service.api.formats import DateTimeField
from consent_service.erasure.models import ErasureRequest
from consent_service.ledger.serializers import StrictSerializer
from consent_service.ledger.user_keys import user_key

TARGETS = ("user_id", "subject_id", "distinct_id")


def _user_key_schema(*, nullable: bool) -> dict[str, Any]:
    # An integer for integer user keys; a string for UUID and other keys. anyOf, each with
    # its own nullable: OpenAPI 3.0 ignores a `nullable` that has no `type` beside it.
    kinds = [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 255}]
    return {"anyOf": [{**kind, "nullable": True} if nullable else kind for kind in kinds]}


def _integer_user_keys() -> bool:
    return isinstance(get_user_model()._meta.pk, models.IntegerField)


@extend_schema_field(_user_key_schema(nullable=False))
class UserKeyField(serializers.Field):  # type: ignore[type-arg]
    """A user's primary key in its JSON form, whatever the host's user model is keyed by.
    Integer keys take only a JSON integer ("12" or true is someone else's id by accident)."""

    default_error_messages = {"invalid": "Must be a user id of this project."}

    def to_internal_value(self, data: Any) -> str:
        if _integer_user_keys():
            valid = isinstance(data, int) and not isinstance(data, bool) and data >= 1
        else:
            valid = isinstance(data, str) and 0 < len(data) <= 255
        try:
            key = user_key(data) if valid else None
        except DjangoValidationError:
            key = None
        if key is None:
            self.fail("invalid")
        return key

    def to_representation(self, value: str) -> int | str:
        return int(value) if _integer_user_keys() else value


@extend_schema_field(_user_key_schema(nullable=True))
class NullableUserKeyField(UserKeyField):
    pass


class ErasureRequestCreateInputSerializer(StrictSerializer):
    """Exactly one target: user_id, subject_id or distinct_id. Unknown fields are refused."""

    user_id = UserKeyField(
        required=False, help_text="Erase the subject linked to this Django user (its pk)."
    )
    subject_id = serializers.UUIDField(
        required=False, help_text="Erase this subject (its uuid, as in the admin and proofs)."
    )
    distinct_id = serializers.CharField(
        max_length=200,
        required=False,
        help_text="Erase the subject this PostHog distinct_id is bound to.",
    )
    note = serializers.CharField(
        max_length=2000,
        required=False,
        default="",
        allow_blank=True,
        help_text="Why, or the ticket it answers; kept with the request.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        given = [name for name in TARGETS if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of user_id, subject_id or distinct_id.", code="one_target"
            )
        return attrs


class ErasureRequestFilterSerializer(serializers.Serializer[Any]):
    """Query parameters; the paginator's own (cursor, page_size) pass through."""

    status = serializers.ChoiceField(
        choices=ErasureRequest.Status.choices,
        required=False,
        help_text="Only requests in this state.",
    )


class ErasureCallSerializer(serializers.Serializer[Any]):
    round = serializers.IntegerField(help_text="The processing round that made the call.")
    worker = serializers.CharField(help_text="The worker that made it.")
    method = serializers.CharField(help_text="HTTP method sent to PostHog.")
    path = serializers.CharField(help_text="Path on the PostHog app host.")
    status_code = serializers.IntegerField(
        allow_null=True, help_text="PostHog's HTTP status; null when no answer came."
    )
    verdict = serializers.CharField(help_text="ok, gone, retry or fatal.")
    response = serializers.CharField(help_text="PostHog's answer body (truncated).")
    error = serializers.CharField(help_text="Network error or timeout, if any.")
    duration_ms = serializers.IntegerField(help_text="Time the call took.")
    at = DateTimeField(help_text="When it was made.")


class ErasureRequestSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="The request's id.")
    subject = serializers.UUIDField(
        source="subject.uuid", allow_null=True, help_text="The subject's uuid, if still known."
    )
    user_id = NullableUserKeyField(
        allow_null=True, help_text="The Django user at the time of the request, if any."
    )
    distinct_ids = serializers.ListField(
        child=serializers.CharField(), help_text="The PostHog distinct_ids to erase."
    )
    reason = serializers.ChoiceField(
        choices=ErasureRequest.Reason.choices, help_text="What triggered the request."
    )
    requested_by = serializers.CharField(
        source="requested_by_label", help_text="Who asked (user:<id>:<name>, visitor, system)."
    )
    note = serializers.CharField(help_text="Free text: why, and later triggers that joined it.")
    status = serializers.ChoiceField(
        choices=ErasureRequest.Status.choices, help_text="Where the request is in its lifecycle."
    )
    outcome = serializers.CharField(
        help_text="When succeeded: deleted, already_gone or nothing_to_erase; else empty."
    )
    attempts = serializers.IntegerField(help_text="Processing rounds completed.")
    next_attempt_at = DateTimeField(help_text="When the worker may take it next.")
    last_error = serializers.CharField(help_text="Why the last round did not finish it.")
    overdue = serializers.BooleanField(help_text="Older than 25 days and not yet succeeded.")
    created_at = DateTimeField(help_text="When it was requested.")
    completed_at = DateTimeField(allow_null=True, help_text="When PostHog accepted the erasure.")
    confirmed_at = DateTimeField(
        allow_null=True, help_text="When a later look found no person left for the ids."
    )


class ErasureRequestDetailSerializer(ErasureRequestSerializer):
    calls = ErasureCallSerializer(
        many=True, help_text="Every call made to PostHog for it, oldest first."
    )
