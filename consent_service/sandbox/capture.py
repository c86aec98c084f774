"""The capture routes: decode, validate and keep events as PostHog's capture service would
(PROTOCOL 3.1-3.3, 3.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consent_service.proxy.codecs import Limits, PayloadError, decode_payload, event_distinct_id
from consent_service.sandbox.store import RECORDING_ROUTE, CapturedEvent, utc_now
from consent_service.sandbox.wire import Request

MiB = 1024 * 1024
EVENTS_BODY_LIMIT = 2 * MiB
ROUTE_BODY_LIMITS = {
    "/e/": EVENTS_BODY_LIMIT,
    "/i/v0/e/": EVENTS_BODY_LIMIT,
    "/capture/": EVENTS_BODY_LIMIT,
    "/track/": EVENTS_BODY_LIMIT,
    "/engage/": EVENTS_BODY_LIMIT,
    "/batch/": 20 * MiB,
    RECORDING_ROUTE: 25 * MiB,
}
DECODE_LIMITS = Limits(max_decoded_bytes=64 * MiB, max_events=10_000)
ENGAGE_ROUTE = "/engage/"


def capture_route(path: str) -> str | None:
    """The canonical route (with trailing slash) for a capture path, else None."""
    route = path if path.endswith("/") else path + "/"
    return route if route in ROUTE_BODY_LIMITS else None


def capture_accept(
    *, request: Request, route: str, project_token: str | None
) -> list[CapturedEvent]:
    """The request's events, or PayloadError with the status PostHog would answer."""
    if len(request.body) > ROUTE_BODY_LIMITS[route]:
        raise PayloadError(413, "payload_too_large", "Request body is too large.")
    payload = decode_payload(
        body=request.body,
        query=request.params,
        content_type=request.header("content-type"),
        content_encoding=request.header("content-encoding"),
        limits=DECODE_LIMITS,
    )
    events = [_named(event, route) for event in payload.events]
    token = _request_token(payload.envelope, events)
    if project_token is not None and token != project_token:
        raise PayloadError(403, "ingest_key_unknown", "Project token is not valid.")
    if route == RECORDING_ROUTE:
        _check_recording(events)
    received_at = utc_now()
    return [
        CapturedEvent(route, event, _distinct_id(event), request.headers, received_at)
        for event in events
    ]


def _named(event: dict[str, Any], route: str) -> dict[str, Any]:
    """An engage object (no event name) counts as $identify; any other nameless event is 400."""
    name = event.get("event")
    if isinstance(name, str) and name:
        return event
    if name is None and (route == ENGAGE_ROUTE or "$set" in event or "$set_once" in event):
        return {**event, "event": "$identify"}
    raise PayloadError(400, "missing_event_name", "Event submitted without an event name.")


def _distinct_id(event: Mapping[str, Any]) -> str:
    distinct_id = event_distinct_id(event)
    if distinct_id is None:
        raise PayloadError(400, "missing_distinct_id", "Event submitted without a distinct_id.")
    return distinct_id


def _request_token(envelope: Mapping[str, Any], events: list[dict[str, Any]]) -> str:
    """Every token in the request must agree (stricter than PostHog, which lets a batch-level
    token win: a proxy that rewrites one place but not the other should fail loudly here)."""
    found = {token for token in [_token_of(envelope), *map(_event_token, events)] if token}
    if len(found) > 1:
        raise PayloadError(
            400, "unroutable_events", "batch submitted with inconsistent api_key values"
        )
    if not found:
        raise PayloadError(401, "ingest_key_required", "API key is missing from the request.")
    return found.pop()


def _event_token(event: Mapping[str, Any]) -> str | None:
    token = _token_of(event)
    properties = event.get("properties")
    if token is None and isinstance(properties, dict):
        token = _token_of(properties, keys=("token",))
    return token


def _token_of(
    data: Mapping[str, Any], keys: tuple[str, ...] = ("token", "$token", "api_key")
) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _check_recording(events: list[dict[str, Any]]) -> None:
    for event in events:
        properties = event.get("properties")
        if not isinstance(properties, dict) or not properties.get("$session_id"):
            raise PayloadError(400, "missing_session_id", "Snapshot without a $session_id.")
        if "$snapshot_data" not in properties:
            raise PayloadError(400, "missing_snapshot_data", "Snapshot without $snapshot_data.")
