"""The consent gate: which events may leave, decided per event (one batch can mix people).

Pure functions over what the caller looked up, so every rule is testable without HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from consent_service.proxy.codecs import event_distinct_id, normalise_id

# Events that merge identities: every id they link must be consented.
LINKING_PROPERTIES = {
    "$identify": ("$anon_distinct_id",),
    "$create_alias": ("alias",),
    "$merge_dangerously": ("alias",),
}
SNAPSHOT_EVENTS = frozenset({"$snapshot", "$snapshot_items"})


@dataclass(frozen=True)
class Grant:
    analytics: bool
    replay: bool


@dataclass(frozen=True)
class Actor:
    """The visitor's subject, from the signed visitor cookie."""

    subject_id: int
    grant: Grant
    distinct_ids: Mapping[str, bool]  # bound ids -> refused


@dataclass(frozen=True)
class IdOwner:
    subject_id: int
    refused: bool
    grant: Grant


@dataclass
class GateResult:
    kept: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    to_bind: set[str] = field(default_factory=set)


def linked_ids(event: Mapping[str, Any]) -> list[str]:
    """The event's distinct_id, the ids it links, and its device id."""
    properties = event.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    names = LINKING_PROPERTIES.get(str(event.get("event")), ())
    values = [event_distinct_id(event), *(properties.get(name) for name in names)]
    values.append(properties.get("$device_id"))
    ids = [normalise_id(value) for value in values if value is not None]
    return [value for value in dict.fromkeys(ids) if value]


def flags_ids(body: Mapping[str, Any]) -> list[str]:
    """A /flags/ body names its ids at the top level."""
    values = [body.get(name) for name in ("distinct_id", "$anon_distinct_id", "$device_id")]
    ids = [normalise_id(value) for value in values if value is not None]
    return [value for value in dict.fromkeys(ids) if value]


def unknown_ids(ids: Iterable[str], actor: Actor | None) -> set[str]:
    known = actor.distinct_ids if actor else {}
    return {value for value in ids if value not in known}


Prepared = list[tuple[dict[str, Any], list[str]]]


def prepare(events: Iterable[dict[str, Any]]) -> Prepared:
    """Each event with its linked ids, computed once."""
    return [(event, linked_ids(event)) for event in events]


def event_ids(prepared: Prepared) -> list[str]:
    return [value for _, ids in prepared for value in ids]


def flags_allowed(
    body: Mapping[str, Any], *, actor: Actor | None, owners: Mapping[str, IdOwner | None]
) -> bool:
    ids = flags_ids(body)
    if not ids:
        return False
    grant = actor.grant if actor else _owner_grant(owners.get(ids[0]))
    return grant.analytics and not any(_id_refusal(value, actor, owners) for value in ids)


def gate(
    prepared: Prepared,
    *,
    recordings: bool,
    actor: Actor | None,
    owners: Mapping[str, IdOwner | None],
) -> GateResult:
    result = GateResult()
    for event, ids in prepared:
        reason = _refusal(event, ids, recordings, actor, owners)
        if reason:
            result.dropped[reason] += 1
            continue
        result.kept.append(event)
        if actor is not None:
            result.to_bind.update(i for i in ids if owners.get(i, 0) is None)
    return result


def _refusal(
    event: Mapping[str, Any],
    ids: list[str],
    recordings: bool,
    actor: Actor | None,
    owners: Mapping[str, IdOwner | None],
) -> str | None:
    distinct_id = event_distinct_id(event)
    if distinct_id is None:
        return "no_distinct_id"
    grant = actor.grant if actor else _owner_grant(owners.get(distinct_id))
    if not grant.analytics:
        return "no_consent"
    if (recordings or event.get("event") in SNAPSHOT_EVENTS) and not grant.replay:
        return "no_replay_consent"
    for value in ids:
        reason = _id_refusal(value, actor, owners)
        if reason:
            return reason
    return None


def _owner_grant(owner: IdOwner | None) -> Grant:
    if owner is None or owner.refused:
        return Grant(analytics=False, replay=False)
    return owner.grant


def _id_refusal(
    value: str, actor: Actor | None, owners: Mapping[str, IdOwner | None]
) -> str | None:
    if actor is not None and value in actor.distinct_ids:
        return "refused_id" if actor.distinct_ids[value] else None
    owner = owners.get(value)
    if owner is None:
        return None if actor is not None else "unknown_id"
    if owner.refused:
        return "refused_id"
    if actor is not None and owner.subject_id == actor.subject_id:
        return None
    return None if owner.grant.analytics else "unconsented_id"
