"""Consent as the hot paths read it: by visitor id (config, proxy) and by PostHog
distinct_id (the proxy), without a database query once cached.

Entries live in the shared cache (CACHES[CONSENT_CACHE_ALIAS]: Redis, or files on one host),
and in process memory in front of it (local_cache.py) when one host shares a generation
file. Readers fill the shared cache with add(). A ledger write deletes its subject's
entries at once (so the writing transaction itself reads fresh), re-sets them after commit
from a fresh read, so a reader that loaded the old state during the write cannot leave it
cached, and changes the generation both times, so every process drops what it kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connections, router, transaction

from consent_service.core.cache import consent_cache
from consent_service.core.conf import conf
from consent_service.ledger.local_cache import MISSING, local_cache
from consent_service.ledger.models import ConsentState, Subject, SubjectIdentifier
from consent_service.ledger.user_keys import user_key

VISITOR = SubjectIdentifier.Kind.VISITOR
DISTINCT_ID = SubjectIdentifier.Kind.DISTINCT_ID
_NONE = "none"
_IDENTIFIER = SubjectIdentifier._meta.db_table
_SELECT_VISITORS = (
    f"SELECT i.value, s.id, s.user_id, st.purposes FROM {_IDENTIFIER} i"
    f" JOIN {Subject._meta.db_table} s ON s.id = i.subject_id"
    f" LEFT JOIN {ConsentState._meta.db_table} st ON st.subject_id = s.id"
    " WHERE i.kind = %s"
)
_VISITOR_BY_ID = _SELECT_VISITORS + " AND i.value = %s"
_VISITORS_BY_SUBJECT = _SELECT_VISITORS + " AND s.id = %s"
_IDS_OF_SUBJECT = (
    f"SELECT value, refused_at IS NOT NULL FROM {_IDENTIFIER} WHERE kind = %s AND subject_id = %s"
)
_OWNERS = (
    f"SELECT i.value, i.subject_id, i.refused_at IS NOT NULL, st.purposes FROM {_IDENTIFIER} i"
    f" LEFT JOIN {ConsentState._meta.db_table} st ON st.subject_id = i.subject_id"
    " WHERE i.kind = %s AND i.value IN ({})"
)


@dataclass(frozen=True)
class VisitorConsent:
    subject_id: int
    user_id: str | None  # user_key(): the user's pk as text, whatever its type
    purposes: dict[str, Any]
    distinct_ids: dict[str, bool] = field(default_factory=dict)  # id -> refused


@dataclass(frozen=True)
class Owner:
    """The subject a distinct_id is bound to, and that subject's stored decisions."""

    subject_id: int
    refused: bool
    purposes: dict[str, Any]


def visitor_consent(*, visitor_id: str) -> VisitorConsent | None:
    key = _visitor_key(visitor_id)
    kept = local_cache.get(key)
    if kept is not MISSING:
        return kept  # type: ignore[no-any-return]
    stamp = local_cache.stamp()
    found = _shared_visitor(key, visitor_id)
    local_cache.put(key, found, stamp)
    return found


def _shared_visitor(key: str, visitor_id: str) -> VisitorConsent | None:
    cached = consent_cache().get(key)
    if cached is not None:
        return None if cached == _NONE else VisitorConsent(**cached)
    found = _visitors(_VISITOR_BY_ID, visitor_id).get(visitor_id)
    consent_cache().add(key, asdict(found) if found else _NONE, conf().consent_cache_seconds)
    return found


def distinct_id_owners(*, distinct_ids: Iterable[str]) -> dict[str, Owner | None]:
    """Who each id belongs to (None: bound to nobody yet)."""
    wanted = list(dict.fromkeys(distinct_ids))
    if not wanted:  # the usual proxied request: every id is already the visitor's
        return {}
    found = {}
    for value in wanted:
        kept = local_cache.get(_id_key(value))
        if kept is not MISSING:
            found[value] = kept
    missing = [value for value in wanted if value not in found]
    if missing:
        stamp = local_cache.stamp()
        loaded = _shared_owners(missing)
        for value, owner in loaded.items():
            local_cache.put(_id_key(value), owner, stamp)
        found.update(loaded)
    return found


def _shared_owners(wanted: list[str]) -> dict[str, Owner | None]:
    keys = {_id_key(value): value for value in wanted}
    cached = consent_cache().get_many(list(keys))
    found = {keys[key]: None if entry == _NONE else Owner(**entry) for key, entry in cached.items()}
    missing = [value for value in wanted if value not in found]
    if missing:
        loaded = _owners(missing)
        found.update(loaded)
        fresh = {
            _id_key(value): asdict(owner) if owner else _NONE for value, owner in loaded.items()
        }
        for key, entry in fresh.items():
            consent_cache().add(key, entry, conf().consent_cache_seconds)
    return found


def visitor_consent_refresh(*, subject_id: int) -> None:
    """Call inside the transaction that changed the subject's consent or identifiers."""
    keys = [
        _visitor_key(value) if kind == VISITOR else _id_key(value)
        for kind, value in SubjectIdentifier.objects.filter(subject_id=subject_id).values_list(
            "kind", "value"
        )
    ]
    consent_cache().delete_many(keys)
    local_cache.change()
    transaction.on_commit(lambda: _refresh(subject_id))


def distinct_ids_forget(*, distinct_ids: Iterable[str]) -> None:
    """Drop cached 'bound to nobody' entries once these ids are bound."""
    consent_cache().delete_many([_id_key(value) for value in distinct_ids])
    local_cache.change()


def _refresh(subject_id: int) -> None:
    """After commit, every key of the subject (visitor and distinct ids) gets the new state:
    set, not added, so an entry a slow reader loaded before the commit cannot stay."""
    fresh: dict[str, Any] = {
        _visitor_key(visitor): asdict(found)
        for visitor, found in _visitors(_VISITORS_BY_SUBJECT, subject_id).items()
    }
    ids = [value for value, _ in _fetch(_IDS_OF_SUBJECT, [DISTINCT_ID, subject_id])]
    for value, owner in (_owners(ids) if ids else {}).items():
        fresh[_id_key(value)] = asdict(owner) if owner else _NONE
    consent_cache().set_many(fresh, conf().consent_cache_seconds)
    local_cache.change()


def _visitors(sql: str, value: str | int) -> dict[str, VisitorConsent]:
    """Raw SQL: building and compiling querysets would cost more than the queries here."""
    rows = _fetch(sql, [VISITOR, value])
    if not rows:
        return {}
    subject_id = rows[0][1]
    distinct_ids = {
        value: bool(refused)
        for value, refused in _fetch(_IDS_OF_SUBJECT, [DISTINCT_ID, subject_id])
    }
    return {
        visitor: VisitorConsent(subject, user_key(user), _json(purposes), distinct_ids)
        for visitor, subject, user, purposes in rows
    }


def _owners(values: list[str]) -> dict[str, Owner | None]:
    placeholders = ", ".join(["%s"] * len(values))
    rows = _fetch(_OWNERS.format(placeholders), [DISTINCT_ID, *values])
    owners: dict[str, Owner | None] = dict.fromkeys(values)
    for value, subject_id, refused, purposes in rows:
        owners[value] = Owner(subject_id, bool(refused), _json(purposes))
    return owners


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    # The database the host's router writes the ledger to, not `default`; and never a
    # replica: a lagging read after commit would cache the state the write just replaced.
    with connections[router.db_for_write(Subject)].cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):  # both backends hand JSON columns back as text
        value = json.loads(value)
    return value or {}


def _visitor_key(visitor_id: str) -> str:
    return f"consent:visitor:{visitor_id}"


def _id_key(distinct_id: str) -> str:
    # Hashed: a distinct_id may hold characters a cache key must not (memcached, spaces).
    return "consent:id:" + hashlib.sha256(distinct_id.encode()).hexdigest()[:32]
