"""A visitor's stored decisions, read on every config call and proxied request.

Read through the shared cache (Redis when REDIS_URL is set, else per process). Readers fill
it with add(). A ledger write deletes its subject's entries at once (so the writing
transaction itself reads fresh) and re-sets them after commit from a fresh read, so a
reader that loaded the old state during the write cannot leave it cached.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from consent_service.core.conf import conf
from consent_service.ledger.models import ConsentState, Subject, SubjectIdentifier

_NO_SUBJECT = "none"
_SELECT = (
    f"SELECT i.value, s.id, s.user_id, st.purposes FROM {SubjectIdentifier._meta.db_table} i"
    f" JOIN {Subject._meta.db_table} s ON s.id = i.subject_id"
    f" LEFT JOIN {ConsentState._meta.db_table} st ON st.subject_id = s.id"
    " WHERE i.kind = %s"
)
_BY_VISITOR = _SELECT + " AND i.value = %s"
_BY_SUBJECT = _SELECT + " AND s.id = %s"


@dataclass(frozen=True)
class VisitorConsent:
    subject_id: int
    user_id: int | None
    purposes: dict[str, Any]


def visitor_consent(*, visitor_id: str) -> VisitorConsent | None:
    key = _key(visitor_id)
    cached = cache.get(key)
    if cached is not None:
        return None if cached == _NO_SUBJECT else VisitorConsent(**cached)
    found = _load(_BY_VISITOR, visitor_id).get(visitor_id)
    cache.add(key, asdict(found) if found else _NO_SUBJECT, conf().consent_cache_seconds)
    return found


def visitor_consent_refresh(*, subject_id: int) -> None:
    """Call inside the transaction that changed the subject's consent or identifiers."""
    visitors = SubjectIdentifier.objects.filter(
        subject_id=subject_id, kind=SubjectIdentifier.Kind.VISITOR
    ).values_list("value", flat=True)
    cache.delete_many([_key(visitor) for visitor in visitors])
    transaction.on_commit(lambda: _refresh(subject_id))


def _refresh(subject_id: int) -> None:
    fresh = {
        _key(visitor): asdict(found) for visitor, found in _load(_BY_SUBJECT, subject_id).items()
    }
    cache.set_many(fresh, conf().consent_cache_seconds)


def _load(sql: str, value: str | int) -> dict[str, VisitorConsent]:
    """One indexed query without the ORM: building and compiling a queryset would cost
    more than the query on this path."""
    with connection.cursor() as cursor:
        cursor.execute(sql, [SubjectIdentifier.Kind.VISITOR, value])
        rows = cursor.fetchall()
    return {
        visitor: VisitorConsent(subject, user, _json(purposes))
        for visitor, subject, user, purposes in rows
    }


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):  # both backends hand JSON columns back as text
        value = json.loads(value)
    return value or {}


def _key(visitor_id: str) -> str:
    return f"consent:visitor:{visitor_id}"
