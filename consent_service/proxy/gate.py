"""The consent gate: which events may leave, and whose they are (RELIABILITY.md P21).

Every event is judged for one subject, its *holder*. On browser routes the holder is the
caller (the subject of the visitor cookie) and nobody else, whatever the ids in the body
belong to. On the server route it is the subject the event's distinct_id is bound to.
Every id an event names must be the holder's live id, or be unbound and claimable, in
which case the holder claims it. A foreign or refused distinct_id drops the event; a
foreign, refused or unclaimable linked id or device id is removed, so nothing merges.

Pure functions over what the caller looked up, so every rule is testable without HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from consent_service.proxy.codecs import event_distinct_id, normalise_id
from consent_service.proxy.cookieless import (
    COOKIELESS_ID,
    NO_SUBJECT,
    cookieless_event,
    cookieless_problem,
)

# Properties naming another id that PostHog merges into the event's person.
LINKED_PROPERTIES = {
    "$identify": ("$anon_distinct_id",),
    "$create_alias": ("alias",),
    "$merge_dangerously": ("alias",),
}
ALWAYS_LINKED = ("$anon_distinct_id", "$device_id")
SNAPSHOT_EVENTS = frozenset({"$snapshot", "$snapshot_items"})

Claimable = Callable[[str], bool]
NO_CLAIMS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Grant:
    analytics: bool
    replay: bool


@dataclass(frozen=True)
class Holder:
    """A subject events may be sent for: its grant and the ids bound to it."""

    subject_id: int
    grant: Grant
    ids: Mapping[str, bool]  # bound id -> refused


@dataclass(frozen=True)
class IdOwner:
    subject_id: int
    refused: bool
    grant: Grant


class Standing(Enum):
    OWN = "own"
    REFUSED = "refused"
    FOREIGN = "foreign"
    UNBOUND = "unbound"


@dataclass(frozen=True)
class Kept:
    event: dict[str, Any]
    distinct_id: str
    subject_id: int
    claims: frozenset[str]


@dataclass
class GateResult:
    kept: list[Kept] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    stripped: int = 0  # linked ids removed from kept events

    def claims(self) -> dict[int, set[str]]:
        """Unbound ids each subject claims, to bind before anything is forwarded."""
        wanted: dict[int, set[str]] = {}
        for kept in self.kept:
            if kept.claims:
                wanted.setdefault(kept.subject_id, set()).update(kept.claims)
        return wanted


def named_ids(event: Mapping[str, Any]) -> list[str]:
    """Every id the event names: its distinct_id, the ids it links, its device id."""
    properties = event.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    values = [event_distinct_id(event), *(properties.get(n) for n in _linked_names(event))]
    ids = [normalise_id(value) for value in values if value is not None]
    return [value for value in dict.fromkeys(ids) if value]


def standing(value: str, holder: Holder, owners: Mapping[str, IdOwner | None]) -> Standing:
    if value in holder.ids:
        return Standing.REFUSED if holder.ids[value] else Standing.OWN
    owner = owners.get(value)
    if owner is None:
        return Standing.UNBOUND
    if owner.subject_id != holder.subject_id:
        return Standing.FOREIGN
    return Standing.REFUSED if owner.refused else Standing.OWN


def gate_for_caller(
    events: Iterable[dict[str, Any]],
    *,
    caller: Holder | None,
    owners: Mapping[str, IdOwner | None],
    claimable: Claimable,
    recordings: bool,
    cookieless: bool = False,
) -> GateResult:
    """Browser routes: the caller decides for itself only; no caller or grant, nothing.
    The one exception, `cookieless` (the preset, never on /s/): posthog-js's cookieless
    events go, rebuilt from an allowlist, under no subject (cookieless.py)."""
    result = GateResult()
    for event in events:
        if caller is not None and caller.grant.analytics:
            _judge(result, event, caller, owners, claimable, recordings)
            continue
        problem = cookieless_problem(event) if cookieless and not recordings else "no_consent"
        if problem is None:
            result.kept.append(Kept(cookieless_event(event), COOKIELESS_ID, NO_SUBJECT, NO_CLAIMS))
        else:
            result.dropped[problem] += 1
    return result


def gate_for_owners(
    events: Iterable[dict[str, Any]],
    *,
    owners: Mapping[str, IdOwner | None],
    claimable: Claimable,
) -> GateResult:
    """The server route: each event is judged by the subject its distinct_id belongs to."""
    result = GateResult()
    for event in events:
        holder = _owner_holder(event_distinct_id(event), owners)
        if holder is None:
            result.dropped["unknown_id"] += 1
        elif not holder.grant.analytics:
            result.dropped["no_consent"] += 1
        else:
            _judge(result, event, holder, owners, claimable, recordings=False)
    return result


def settle(result: GateResult, bound: Mapping[int, set[str]]) -> list[Kept]:
    """Keep the events whose claimed ids were bound; the rest (the subject is at its id
    limit, or another subject bound the id first) are dropped, as erasure could not find
    them."""
    kept = []
    for entry in result.kept:
        if entry.claims <= bound.get(entry.subject_id, set()):
            kept.append(entry)
        else:
            result.dropped["unbindable_id"] += 1
    result.kept = kept
    return kept


def _judge(
    result: GateResult,
    event: dict[str, Any],
    holder: Holder,
    owners: Mapping[str, IdOwner | None],
    claimable: Claimable,
    recordings: bool,
) -> None:
    distinct_id = event_distinct_id(event)
    if distinct_id is None:
        result.dropped["no_distinct_id"] += 1
        return
    found = standing(distinct_id, holder, owners)
    reason = _refusal(event, distinct_id, found, holder, claimable, recordings)
    if reason is not None:
        result.dropped[reason] += 1
        return
    claims = _strip_linked(result, event, holder, owners, claimable)
    if found is Standing.UNBOUND:
        claims.add(distinct_id)
    result.kept.append(Kept(event, distinct_id, holder.subject_id, frozenset(claims)))


def _refusal(
    event: Mapping[str, Any],
    distinct_id: str,
    found: Standing,
    holder: Holder,
    claimable: Claimable,
    recordings: bool,
) -> str | None:
    if (recordings or event.get("event") in SNAPSHOT_EVENTS) and not holder.grant.replay:
        return "no_replay_consent"
    if found is Standing.REFUSED:
        return "refused_id"
    if found is Standing.FOREIGN:
        return "foreign_id"
    if found is Standing.UNBOUND and not claimable(distinct_id):
        return "unclaimable_id"
    return None


def _strip_linked(
    result: GateResult,
    event: dict[str, Any],
    holder: Holder,
    owners: Mapping[str, IdOwner | None],
    claimable: Claimable,
) -> set[str]:
    """Remove linked ids the holder may not use; return the unbound ones it claims."""
    properties = event.get("properties")
    if not isinstance(properties, dict):
        return set()
    claims = set()
    for name in _linked_names(event):
        if properties.get(name) is None:
            continue
        value = normalise_id(properties[name])
        found = standing(value, holder, owners) if value else Standing.FOREIGN
        if found is Standing.OWN:
            continue
        if found is Standing.UNBOUND and value and claimable(value):
            claims.add(value)
            continue
        del properties[name]  # the event stays, without the merge
        result.stripped += 1
    return claims


def _linked_names(event: Mapping[str, Any]) -> tuple[str, ...]:
    return ALWAYS_LINKED + LINKED_PROPERTIES.get(str(event.get("event")), ())


def _owner_holder(distinct_id: str | None, owners: Mapping[str, IdOwner | None]) -> Holder | None:
    owner = owners.get(distinct_id) if distinct_id else None
    if owner is None or distinct_id is None:
        return None
    return Holder(owner.subject_id, owner.grant, {distinct_id: owner.refused})
