"""What the gate needs to know, looked up through the ledger's cached reads, and the
ids it claims, bound through the ledger before anything is forwarded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.http import HttpRequest

from consent_service.core.visitor import existing_visitor_id
from consent_service.ledger.distinct_ids import distinct_ids_bind
from consent_service.ledger.selectors import purposes_granted
from consent_service.ledger.visitor_consent import distinct_id_owners, visitor_consent
from consent_service.proxy.gate import Grant, Holder, IdOwner


def caller_for(request: HttpRequest) -> Holder | None:
    """The subject of the request's visitor cookie (the user's, once linked at login)."""
    visitor_id = existing_visitor_id(request)
    found = visitor_consent(visitor_id=visitor_id) if visitor_id else None
    if found is None:
        return None
    return Holder(found.subject_id, _grant(found.purposes), found.distinct_ids)


def owners_of(distinct_ids: Iterable[str]) -> dict[str, IdOwner | None]:
    owners = distinct_id_owners(distinct_ids=distinct_ids)
    return {
        value: IdOwner(owner.subject_id, owner.refused, _grant(owner.purposes)) if owner else None
        for value, owner in owners.items()
    }


def claims_bind(claims: Mapping[int, set[str]]) -> dict[int, set[str]]:
    """Bind each subject's claimed ids; what comes back is what is now bound to it."""
    return {
        subject_id: distinct_ids_bind(subject_id=subject_id, distinct_ids=ids)
        for subject_id, ids in claims.items()
    }


def _grant(purposes: Mapping[str, Any]) -> Grant:
    granted = purposes_granted(purposes)
    return Grant(analytics="analytics" in granted, replay="session_replay" in granted)
