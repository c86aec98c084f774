"""The body PostHog receives, built fresh from validated parts: never the client's bytes,
never a field we did not check (RELIABILITY.md P22). PostHog reads a body whose batch does
not parse as one event, and a nameless object as an `$identify`; neither can happen to a
body that holds only what is listed here."""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consent_service.proxy.codecs import FFFD_ERRORS

TOKEN_KEYS = ("api_key", "token", "$token")
# Top-level event fields PostHog's capture reads besides the ones rebuilt below.
PERSON_UPDATES = ("$set", "$set_once")
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def encode_json(document: Any) -> bytes:
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", FFFD_ERRORS)


def gzip_json(document: Any) -> bytes:
    """Level 1: we pay it per request, and it is most of the gain."""
    return gzip.compress(encode_json(document), compresslevel=1, mtime=0)


def is_timestamp(value: Any) -> bool:
    """An RFC 3339 time, the form PostHog parses; anything else fails its whole batch."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return True


def token_of(data: Mapping[str, Any]) -> str | None:
    for key in TOKEN_KEYS:
        value = data.get(key)
        if value is not None:
            return value if isinstance(value, str) else ""
    return None


def event_problem(event: Any, token: str) -> str | None:
    """Why PostHog must not see this event, or None."""
    if not isinstance(event, dict):
        return "invalid_event"
    name = event.get("event")
    if not isinstance(name, str) or not name:
        return "no_event_name"  # PostHog would read it as an $identify
    properties = event.get("properties", {})
    if not isinstance(properties, dict):
        return "invalid_event"
    if token_of(event) not in (None, token) or properties.get("token", token) != token:
        return "foreign_token"
    if "uuid" in event and _canonical_uuid(event["uuid"]) is None:
        return "invalid_event"
    if "timestamp" in event and not is_timestamp(event["timestamp"]):
        return "invalid_event"
    return None


def rebuilt_event(
    event: Mapping[str, Any], distinct_id: str, *, erasable: bool = True
) -> dict[str, Any]:
    """Only what we checked, with the distinct_id we judged in both places PostHog reads.

    `erasable`: PostHog keeps no person for an event sent with person processing off
    (posthog-js does so for anonymous visitors under `identified_only`), and deleting
    persons then leaves the event behind; so every forwarded event processes its person."""
    properties = event.get("properties") or {}  # ours: parsed for this request
    properties["distinct_id"] = distinct_id
    if erasable:
        properties["$process_person_profile"] = True
    fresh: dict[str, Any] = {
        "event": event["event"],
        "distinct_id": distinct_id,
        "properties": properties,
    }
    if "uuid" in event:
        fresh["uuid"] = _canonical_uuid(event["uuid"])
    if "timestamp" in event:
        fresh["timestamp"] = event["timestamp"]
    if isinstance(event.get("offset"), int) and not isinstance(event["offset"], bool):
        fresh["offset"] = event["offset"]
    for key in PERSON_UPDATES:
        if isinstance(event.get(key), dict):
            fresh[key] = event[key]
    return fresh


def recording_document(events: list[dict[str, Any]], *, token: str) -> list[dict[str, Any]]:
    """/s/ takes no batch object, only an array of recordings, each with its token."""
    return [{**event, "token": token} for event in events]


# What a /flags/ body may carry besides its token and ids, with the type PostHog expects.
FLAGS_FIELDS: dict[str, type] = {
    "groups": dict,
    "person_properties": dict,
    "group_properties": dict,
    "timezone": str,
    "geoip_disable": bool,
    "flag_keys_to_evaluate": list,
}


def flags_document(
    body: Mapping[str, Any], *, token: str, ids: Mapping[str, str]
) -> dict[str, Any]:
    """`ids`: the body's id fields that passed the gate, under the names the client used."""
    document: dict[str, Any] = {"token": token, **ids}
    for key, kind in FLAGS_FIELDS.items():
        if isinstance(body.get(key), kind):
            document[key] = body[key]
    if is_timestamp(body.get("sent_at")):
        document["sent_at"] = body["sent_at"]
    return document


def _canonical_uuid(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    if _CANONICAL_UUID.match(value):  # what SDKs send: skip the parse on the hot path
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
