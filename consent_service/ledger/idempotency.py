"""Idempotency-Key handling after draft-ietf-httpapi-idempotency-key-header:
a replay returns the stored response, the same key with another body is 422,
and a duplicate that arrives while the first is still running is 409."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from consent_service.core.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused
from consent_service.ledger.models import IdempotencyKey

# A claim older than this belongs to a request that died before finishing.
ABANDONED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def idempotency_claim(*, claim: IdempotencyClaim, fingerprint: str) -> StoredResponse | None:
    """Claim the key for this request, or return the response of the one that had it."""
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                scope=claim.scope,
                key=claim.key,
                fingerprint=fingerprint,
                status=IdempotencyKey.Status.IN_PROGRESS,
            )
        return None
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.get(scope=claim.scope, key=claim.key)
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request.", attr="Idempotency-Key"
        )
    if existing.status == IdempotencyKey.Status.DONE:
        assert existing.response_status is not None and existing.response_body is not None
        return StoredResponse(existing.response_status, existing.response_body)
    if not _take_over_abandoned(existing):
        raise IdempotencyKeyInFlight(
            "A request with this Idempotency-Key is still being processed.",
            attr="Idempotency-Key",
        )
    return None


def _take_over_abandoned(existing: IdempotencyKey) -> bool:
    now = timezone.now()
    if existing.created_at > now - ABANDONED_AFTER:
        return False
    taken = IdempotencyKey.objects.filter(
        pk=existing.pk, status=IdempotencyKey.Status.IN_PROGRESS, created_at=existing.created_at
    ).update(created_at=now)
    return taken == 1


def idempotency_complete(*, claim: IdempotencyClaim, status: int, body: dict[str, Any]) -> None:
    """Store the response; call inside the transaction that did the work."""
    IdempotencyKey.objects.filter(scope=claim.scope, key=claim.key).update(
        status=IdempotencyKey.Status.DONE, response_status=status, response_body=body
    )


def idempotency_release(*, claim: IdempotencyClaim) -> None:
    """The request failed: let a retry with the same key run again."""
    IdempotencyKey.objects.filter(
        scope=claim.scope, key=claim.key, status=IdempotencyKey.Status.IN_PROGRESS
    ).delete()
