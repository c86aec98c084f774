"""Persons derived from captured events, and their deletion (PROTOCOL 4).

Real PostHog deletes events asynchronously, in weekly batches, and never reports completion
(PROTOCOL 4.6). The sandbox removes them from the store at once so erasure tests can assert
the outcome; `deletions` keeps what was asked, for asserting the calls themselves.

PostHog deletes events by person. An event ingested without one (`$process_person_profile:
false` while its distinct_id had no person: posthog-js's anonymous traffic under
`identified_only`) is personless, so no person deletion removes it, even after its
distinct_id has been merged into a person.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from consent_service.sandbox.store import CapturedEvent, Store, utc_now

# Event name -> the property naming the other distinct_id to merge with.
MERGE_EVENTS = {
    "$identify": "$anon_distinct_id",
    "$create_alias": "alias",
    "$merge_dangerously": "alias",
}
# Ingestion drops these when they say `$process_person_profile: false`.
PERSON_ONLY_EVENTS = {"$identify", "$create_alias", "$merge_dangerously", "$groupidentify"}


@dataclass
class Person:
    pk: int
    uuid: str
    distinct_ids: list[str]
    properties: dict[str, Any]
    created_at: datetime
    last_seen_at: datetime
    is_identified: bool = False

    @property
    def name(self) -> str:
        for key in ("email", "name", "username"):
            if self.properties.get(key):
                return str(self.properties[key])
        return self.distinct_ids[0] if self.distinct_ids else self.uuid

    def as_json(self) -> dict[str, Any]:
        """As PostHog's person list serialises it: `id` is the UUID."""
        return {
            "type": "person",
            "id": self.uuid,
            "uuid": self.uuid,
            "name": self.name,
            "distinct_ids": list(self.distinct_ids),
            "properties": dict(self.properties),
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "is_identified": self.is_identified,
        }

    def copy(self) -> Person:
        return replace(self, distinct_ids=list(self.distinct_ids), properties=dict(self.properties))


class Persons:
    """Thread-safe. Persons as PostHog keeps them under `person_profiles: identified_only`:
    an event with `$process_person_profile: false` creates, merges and updates no person
    (PROTOCOL 4, RELIABILITY J15)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._by_distinct_id: dict[str, Person] = {}
        self._by_uuid: dict[str, Person] = {}
        self._next_pk = 1
        self._deletions: list[dict[str, Any]] = []

    # --- reading ----------------------------------------------------------------------

    def all(self) -> list[Person]:
        with self._lock:
            return [person.copy() for person in self._by_uuid.values()]

    def find(self, distinct_id: str) -> Person | None:
        with self._lock:
            person = self._by_distinct_id.get(distinct_id)
            return person.copy() if person else None

    def get(self, person_id: str) -> Person | None:
        """By UUID or integer primary key; ValueError when `person_id` is neither."""
        with self._lock:
            if person_id.isdigit():
                pk = int(person_id)
                person = next((p for p in self._by_uuid.values() if p.pk == pk), None)
            else:
                person = self._by_uuid.get(str(uuid.UUID(person_id)))
            return person.copy() if person else None

    @property
    def deletions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._deletions]

    # --- ingestion --------------------------------------------------------------------

    def ingest(
        self, events: Iterable[CapturedEvent], *, generation: int | None = None
    ) -> list[CapturedEvent]:
        """The events ingestion keeps, each marked `personless` when no person takes it;
        persons are created, merged and updated on the way. Nothing is done (and nothing
        kept) when `generation` is given and the store has been cleared since."""
        with self._lock:
            if generation is not None and generation != self._store.generation:
                return []
            kept = map(self._ingest_one, events)
            return [event for event in kept if event is not None]

    def _ingest_one(self, captured: CapturedEvent) -> CapturedEvent | None:
        distinct_id = captured.distinct_id
        if captured.is_recording or distinct_id is None:
            return captured  # replay goes to its own pipeline, never to persons
        if _properties(captured.event).get("$process_person_profile") is not False:
            self._process(captured.event, distinct_id, captured.received_at)
            return captured
        if captured.event.get("event") in PERSON_ONLY_EVENTS:
            return None  # dropped: invalid_event_when_process_person_profile_is_false
        # A person this id already has takes the event ("force_upgrade"), unchanged.
        attached = distinct_id in self._by_distinct_id
        return captured if attached else replace(captured, personless=True)

    def _process(self, event: dict[str, Any], distinct_id: str, at: datetime) -> None:
        properties = _properties(event)
        name = event.get("event")
        other = properties.get(MERGE_EVENTS[name]) if name in MERGE_EVENTS else None
        if isinstance(other, str) and other and other != distinct_id:
            person = self._link(distinct_id, other, at)
            person.is_identified = True
        else:
            person = self._by_distinct_id.get(distinct_id) or self._create([distinct_id], at)
        if name == "$identify":
            person.is_identified = True
        _apply_updates(person.properties, event, properties)
        person.last_seen_at = max(person.last_seen_at, at)

    def _link(self, distinct_id: str, other: str, at: datetime) -> Person:
        """The person now owning both ids; the event's own person survives a merge."""
        mine, theirs = self._by_distinct_id.get(distinct_id), self._by_distinct_id.get(other)
        if mine is None and theirs is None:
            return self._create([distinct_id, other], at)
        if mine is None or theirs is None:
            person = mine or theirs
            assert person is not None
            self._attach(person, other if mine else distinct_id)
            return person
        if mine is not theirs:
            self._merge(theirs, into=mine)
        return mine

    def _create(self, distinct_ids: list[str], at: datetime) -> Person:
        person = Person(self._next_pk, str(uuid.uuid4()), [], {}, at, at)
        self._next_pk += 1
        self._by_uuid[person.uuid] = person
        for distinct_id in distinct_ids:
            self._attach(person, distinct_id)
        return person

    def _attach(self, person: Person, distinct_id: str) -> None:
        person.distinct_ids.append(distinct_id)
        self._by_distinct_id[distinct_id] = person

    def _merge(self, source: Person, *, into: Person) -> None:
        for distinct_id in source.distinct_ids:
            self._attach(into, distinct_id)
        into.properties = {**source.properties, **into.properties}
        into.created_at = min(into.created_at, source.created_at)
        del self._by_uuid[source.uuid]

    # --- deletion ---------------------------------------------------------------------

    def delete(
        self,
        *,
        how: str,
        ids: list[str],
        persons: list[Person],
        delete_events: bool,
        delete_recordings: bool,
        keep_person: bool = False,
    ) -> dict[str, Any]:
        """Delete `persons` (found by the caller) and, when asked, their events at once."""
        with self._lock:
            live = [self._by_uuid.get(person.uuid, person) for person in persons]
            distinct_ids = [d for person in live for d in person.distinct_ids]
            deleted = 0 if keep_person else sum(map(self._remove, live))
            self._deletions.append(
                {
                    "how": how,
                    "ids": list(ids),
                    "person_uuids": [person.uuid for person in persons],
                    "distinct_ids": distinct_ids,
                    "flags": {
                        "delete_events": delete_events,
                        "delete_recordings": delete_recordings,
                        "keep_person": keep_person,
                    },
                    "at": utc_now(),
                }
            )
        if delete_events:
            self._store.remove_events(distinct_ids, recordings=False)
        if delete_recordings:
            self._store.remove_events(distinct_ids, recordings=True)
        return {
            "persons_found": len(persons),
            "persons_deleted": deleted,
            "events_queued_for_deletion": delete_events and bool(persons),
            "recordings_queued_for_deletion": delete_recordings and bool(persons),
            "deletion_errors": [],
        }

    def _remove(self, person: Person) -> int:
        if self._by_uuid.pop(person.uuid, None) is None:
            return 0
        for distinct_id in person.distinct_ids:
            self._by_distinct_id.pop(distinct_id, None)
        return 1

    def clear(self) -> None:
        with self._lock:
            self._by_distinct_id.clear()
            self._by_uuid.clear()
            self._deletions.clear()


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    properties = event.get("properties")
    return properties if isinstance(properties, dict) else {}


def _apply_updates(target: dict[str, Any], event: dict[str, Any], props: dict[str, Any]) -> None:
    """$set, $set_once and $unset, read top-level and from properties, as ingestion does."""
    for source in (event, props):
        set_once = source.get("$set_once")
        if isinstance(set_once, dict):
            for key, value in set_once.items():
                target.setdefault(key, value)
        updates = source.get("$set")
        if isinstance(updates, dict):
            target.update(updates)
        unset = source.get("$unset")
        if isinstance(unset, list):
            for key in unset:
                target.pop(str(key), None)
