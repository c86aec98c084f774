"""Which shape PostHog reads a capture body as: serde's untagged `RawRequest` (PROTOCOL 3.3).

The variants are tried in order and the first that deserializes wins (v0_request.rs):
`Array(Vec<RawEvent>)`, `Batch(BatchedRequest)`, `One(RawEvent)`, `Engage(RawEngageEvent)`.
A batch object whose `sent_at` is not a string, or one of whose items is not a valid event,
is no `Batch`: it falls through to `One`, so its own top-level `event` and `distinct_id`
become one event and the `batch` list is ignored (RELIABILITY P22).

Struct fields follow `RawEvent`/`RawEngageEvent` (rust/common/types/src/event.rs): unknown
fields are ignored, a missing `Option` is None, a field given twice (also under two of its
aliases, such as `token` and `api_key`) fails the struct, `null` fits an `Option` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consent_service.sandbox.jsontext import RepeatedKeys
from consent_service.sandbox.wire import CaptureError, parsing_error

I64 = 2**63
_HYPHENATED = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# The forms Rust's `Uuid::parse_str` takes: simple, hyphenated, braced and urn.
UUID_FORMS = re.compile(
    rf"[0-9a-fA-F]{{32}}|{_HYPHENATED}|\{{{_HYPHENATED}\}}|urn:uuid:{_HYPHENATED}"
)

Check = Callable[[Any], bool]


@dataclass(frozen=True)
class Field:
    keys: tuple[str, ...]  # the name, then its serde aliases
    check: Check
    required: bool = False


def _anything(value: Any) -> bool:
    return True


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _optional_string(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _optional_bool(value: Any) -> bool:
    return value is None or isinstance(value, bool)


def _optional_i64(value: Any) -> bool:
    # `type(...) is int`: a JSON true is no integer to serde, and 1.0 is a float.
    return value is None or (type(value) is int and -I64 <= value < I64)


def _map(value: Any) -> bool:
    return isinstance(value, dict)


def _optional_map(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _uuid_or_empty(value: Any) -> bool:
    """`empty_string_uuid_is_none`: null or "" is None, any other string must parse."""
    return value is None or value == "" or (isinstance(value, str) and _is_uuid(value))


def _optional_uuid(value: Any) -> bool:
    return value is None or (isinstance(value, str) and _is_uuid(value))


def _is_uuid(text: str) -> bool:
    return UUID_FORMS.fullmatch(text) is not None


class Struct:
    """A serde struct: its fields, each reachable under its name and its aliases."""

    def __init__(self, *fields: Field) -> None:
        self.fields = fields
        self.by_name = {name: field for field in fields for name in field.keys}
        self.required = frozenset(field for field in fields if field.required)

    def fits(self, value: Any) -> bool:
        """Whether serde's derived `Deserialize` accepts `value`."""
        if not isinstance(value, dict):
            return False
        repeated = value.repeated if isinstance(value, RepeatedKeys) else frozenset()
        seen: set[Field] = set()
        for name in self.by_name.keys() & value.keys():
            field = self.by_name[name]
            if field in seen or name in repeated or not field.check(value[name]):
                return False  # a duplicate field, or a value of another type
            seen.add(field)
        return self.required <= seen

    def without(self, *names: str) -> Struct:
        return Struct(*(field for field in self.fields if field.keys[0] not in names))


RAW_EVENT = Struct(
    Field(("token", "$token", "api_key"), _optional_string),
    Field(("distinct_id", "$distinct_id"), _anything),
    Field(("uuid",), _uuid_or_empty),
    Field(("event",), _string, required=True),
    Field(("properties",), _map),  # `#[serde(default)]`: absent is {}, null is an error
    Field(("timestamp",), _optional_string),
    Field(("offset",), _optional_i64),
    Field(("$set",), _optional_map),
    Field(("$set_once",), _optional_map),
)
ENGAGE_EVENT = RAW_EVENT.without("event")
# events/recordings.rs `RawRecording`: no $set, and its uuid has no empty-string leniency.
RECORDING = Struct(
    *RAW_EVENT.without("uuid", "$set", "$set_once").fields, Field(("uuid",), _optional_uuid)
)


def _events(value: Any) -> bool:
    return isinstance(value, list) and all(map(RAW_EVENT.fits, value))


BATCH = Struct(
    Field(("token", "api_key"), _string, required=True),
    Field(("historical_migration",), _optional_bool),
    Field(("sent_at",), _optional_string),
    Field(("batch",), _events, required=True),
)


@dataclass(frozen=True)
class RawRequest:
    shape: str  # "array", "batch", "one" or "engage"
    events: list[dict[str, Any]]
    batch_token: str | None = None
    sent_at: str | None = None


def raw_request(document: Any) -> RawRequest:
    """The first variant of PostHog's `RawRequest` that `document` deserializes as."""
    if isinstance(document, list) and all(map(RAW_EVENT.fits, document)):
        return RawRequest("array", document)
    if BATCH.fits(document):
        token = document.get("token", document.get("api_key"))
        return RawRequest("batch", document["batch"], token, document.get("sent_at"))
    if RAW_EVENT.fits(document):
        return RawRequest("one", [document])
    if ENGAGE_EVENT.fits(document):
        return RawRequest("engage", [document])
    raise parsing_error("data did not match any variant of untagged enum RawRequest")


def recording_request(document: Any) -> RawRequest:
    """payload/recordings.rs `RecordingPayload`: an array of recordings or one; no batch."""
    if isinstance(document, list) and all(map(RECORDING.fits, document)):
        return RawRequest("array", document)
    if RECORDING.fits(document):
        return RawRequest("one", [document])
    raise parsing_error("data did not match any variant of untagged enum RecordingPayload")


def request_events(request: RawRequest, *, engage_route: bool) -> list[dict[str, Any]]:
    """`RawRequest::events`: a nameless object is `$identify` on /engage/ only; no event,
    or only `$performance_event`s, is a 400."""
    if request.shape == "engage":
        if not engage_route:
            detail = "failed to hydrate events from request: "
            raise CaptureError(400, "request_hydration_error", detail + "non-engage request")
        events = [{**request.events[0], "event": "$identify"}]
    else:
        events = request.events
    if not events:
        raise CaptureError(400, "empty_batch", "request holds no event")
    kept = [event for event in events if event.get("event") != "$performance_event"]
    if not kept:
        raise CaptureError(400, "empty_payload_filtered", "payload empty after filtering")
    return kept
