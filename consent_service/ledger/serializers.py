from __future__ import annotations

from typing import Any

from rest_framework import serializers

from consent_service.api.formats import DateTimeField
from consent_service.ledger.distinct_ids import distinct_id_is_valid
from consent_service.ledger.policies import policy_snapshot


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: "yes", 1 or "false" are not a decision anyone made."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictSerializer(serializers.Serializer[Any]):
    """Rejects unknown fields, so nobody can slip in `source: admin` or a timestamp."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = (
            set(self.initial_data) - set(self.fields)
            if isinstance(self.initial_data, dict)
            else set()
        )
        if unknown:
            raise serializers.ValidationError(
                {
                    name: serializers.ErrorDetail("Unknown field.", code="unknown_field")
                    for name in sorted(unknown)
                }
            )
        return attrs


class ConsentDecisionInputSerializer(StrictSerializer):
    purposes = serializers.DictField(
        child=StrictBooleanField(),
        allow_empty=False,
        help_text="Purpose key to true (grant) or false (refuse). Purposes left out keep "
        "their current decision.",
    )
    policy_version = serializers.CharField(
        max_length=64, help_text="The policy version the visitor was shown; must be current."
    )
    distinct_id = serializers.CharField(
        max_length=200,
        required=False,
        help_text="posthog-js's current distinct_id, bound to this visitor for erasure. Either "
        "already this visitor's (e.g. the config's identified_id) or an unbound posthog-js "
        "anonymous id (UUIDv7), which the visitor then claims (any unbound id with "
        "CONSENT_TRUST_CLIENT_DISTINCT_IDS on). Another person's id is 409 "
        "`distinct_id_taken`; any other is 400 `invalid_distinct_id`.",
    )
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["banner", "api"],
        default="api",
        help_text="How the decision was collected: the consent banner or another API client.",
    )

    def validate_purposes(self, value: dict[str, bool]) -> dict[str, bool]:
        known = set(policy_snapshot().purposes)
        unknown = {
            key: serializers.ErrorDetail("Unknown purpose.", code="unknown_purpose")
            for key in value
            if key not in known
        }
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def validate_distinct_id(self, value: str) -> str:
        if not distinct_id_is_valid(value):
            raise serializers.ValidationError(
                "Not a usable distinct_id.", code="invalid_distinct_id"
            )
        return value


class ConsentWithdrawInputSerializer(StrictSerializer):
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["banner", "api"],
        default="api",
        help_text="Where the withdrawal was made.",
    )


class PurposeStateSerializer(serializers.Serializer[Any]):
    granted = serializers.BooleanField(
        help_text="True only while a current grant exists (not expired, not stale)."
    )
    choice = serializers.BooleanField(
        allow_null=True, help_text="The last recorded choice, even if no longer current."
    )
    decided_at = DateTimeField(allow_null=True, help_text="When it was decided.")
    policy_version = serializers.CharField(
        allow_null=True, help_text="The policy version it was decided under."
    )
    current = serializers.BooleanField(
        help_text="False when undecided, expired, or made before a policy needing re-consent."
    )


class ConsentStateSerializer(serializers.Serializer[Any]):
    purposes = serializers.DictField(
        child=PurposeStateSerializer(), help_text="Every active purpose, keyed by its id."
    )
    policy_version = serializers.CharField(
        allow_null=True, help_text="Policy version of the latest decision."
    )
    current_policy_version = serializers.CharField(help_text="The policy version in force.")
    decided_at = DateTimeField(allow_null=True, help_text="Time of the latest decision.")
    expires_at = DateTimeField(
        allow_null=True, help_text="When the first current decision expires and is asked again."
    )
    needs_prompt = serializers.BooleanField(
        help_text="Show the banner: some purpose has no current decision."
    )
    gpc = serializers.BooleanField(help_text="The request carried Sec-GPC: 1.")


class ConsentRecordSerializer(serializers.Serializer[Any]):
    seq = serializers.IntegerField(help_text="Position in the ledger's hash chain.")
    recorded_at = DateTimeField(help_text="Server time of the record.")
    action = serializers.CharField(help_text="decide or withdraw.")
    source = serializers.CharField(help_text="banner, api, admin, gpc or login.")  # type: ignore[assignment]
    choices = serializers.DictField(
        child=serializers.BooleanField(), help_text="The per-purpose choices recorded."
    )
    policy_version = serializers.CharField(help_text="The policy version decided under.")
    gpc = serializers.BooleanField(help_text="Sec-GPC: 1 was present.")
    hash = serializers.CharField(help_text="The record's chain hash: a receipt id.")
