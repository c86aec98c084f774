"""Domain errors. Services raise these; the API's one handler turns them into the envelope."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400
    error_type = "client_error"
    code = "invalid"

    def __init__(
        self, detail: str, *, attr: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
        self.extra = extra or {}


class StalePolicyVersion(ServiceError):
    """The client decided against a policy text that is no longer current."""

    status_code = 409
    error_type = "conflict"
    code = "stale_policy_version"


class DistinctIdTaken(ServiceError):
    """The id is bound to another subject: one id, one subject, whatever they decided."""

    status_code = 409
    error_type = "conflict"
    code = "distinct_id_taken"


class InvalidDistinctId(ServiceError):
    """An unbound id the caller may not claim: guessable ids are nobody's to take."""

    status_code = 400
    error_type = "validation_error"
    code = "invalid_distinct_id"


class UnknownPolicyVersion(ServiceError):
    status_code = 400
    error_type = "validation_error"
    code = "unknown_policy_version"


class IdempotencyKeyReused(ServiceError):
    """Same Idempotency-Key, different request: the client has a bug, not a retry."""

    status_code = 422
    error_type = "unprocessable"
    code = "idempotency_key_reused"


class IdempotencyKeyInFlight(ServiceError):
    """The first request with this key has not finished yet; retry later."""

    status_code = 409
    error_type = "conflict"
    code = "idempotency_key_in_flight"
