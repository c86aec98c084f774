"""The capture routes: decode, validate and keep events as PostHog's capture service would
(PROTOCOL 3.1-3.3, 3.5). The decoding is the sandbox's own (transport, jsontext, shapes),
never the proxy's, so that a proxy mistake shows up here as PostHog would show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent_service.sandbox.client_ip import event_ip, request_ip
from consent_service.sandbox.clock import event_time, request_sent_at
from consent_service.sandbox.event_fields import (
    extract_distinct_id,
    extract_token,
    request_token,
    validate_token,
)
from consent_service.sandbox.jsontext import parse_json
from consent_service.sandbox.shapes import (
    RawRequest,
    raw_request,
    recording_request,
    request_events,
)
from consent_service.sandbox.store import RECORDING_ROUTE, CapturedEvent, utc_now
from consent_service.sandbox.transport import (
    EventQuery,
    decompress,
    event_query,
    extract_payload,
)
from consent_service.sandbox.wire import CaptureError, Request, too_big

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
# PostHog sets its decoded-size limit per deployment; this one is the sandbox's.
DECODED_LIMIT = 64 * MiB
ENGAGE_ROUTE = "/engage/"


@dataclass(frozen=True)
class Arrival:
    """What the events of one request share: when it arrived, its `sent_at`, its client IP."""

    now: datetime
    sent_at: datetime | None
    ip: str | None


@dataclass(frozen=True)
class Accepted:
    events: list[CapturedEvent]
    beacon: bool  # `?beacon=1`: answer 204


def capture_route(path: str) -> str | None:
    """The canonical route (with trailing slash) for a capture path, else None."""
    route = path if path.endswith("/") else path + "/"
    return route if route in ROUTE_BODY_LIMITS else None


def capture_accept(*, request: Request, route: str, project_token: str | None) -> Accepted:
    """The request's events, or CaptureError with the status PostHog would answer."""
    if len(request.body) > ROUTE_BODY_LIMITS[route]:
        raise too_big("request body is larger than the route takes")
    query = event_query(request.query)
    document = _document(request, route, query)
    body_sent_at = None  # replay bodies have no batch envelope
    if route == RECORDING_ROUTE:
        events, token = _recording(document)
    else:
        raw = raw_request(document)
        events, token = _analytics(raw, route)
        body_sent_at = raw.sent_at
    if project_token is not None and token != project_token:
        raise CaptureError(403, "ingest_key_unknown", "api_key does not resolve to a project")
    arrival = Arrival(
        now=utc_now(),
        sent_at=request_sent_at(body_sent_at=body_sent_at, query_ms=query.sent_at),
        ip=request_ip(headers=request.headers, peer=request.peer),
    )
    captured = [_captured(event, route, request, arrival) for event in events]
    return Accepted(captured, query.beacon)


def _document(request: Request, route: str, query: EventQuery) -> Any:
    data, compression = extract_payload(
        body=request.body,
        query=query,
        content_type=request.header("content-type"),
        content_encoding=request.headers.get("content-encoding"),
    )
    return parse_json(decompress(data, compression, limit=DECODED_LIMIT, route=route))


def _analytics(raw: RawRequest, route: str) -> tuple[list[dict[str, Any]], str]:
    events = request_events(raw, engage_route=route == ENGAGE_ROUTE)
    return events, request_token(events, raw.batch_token)


def _recording(document: Any) -> tuple[list[dict[str, Any]], str]:
    """Replay: an array or one event, the token taken from the first event only."""
    events = recording_request(document).events
    if not events:
        raise CaptureError(400, "empty_batch", "request holds no event")
    token = extract_token(events[0])
    if token is None:
        raise CaptureError(401, "ingest_key_required", "event submitted without an api_key")
    for event in events:
        _check_recording(event)
    return events, validate_token(token)


def _captured(
    event: dict[str, Any], route: str, request: Request, arrival: Arrival
) -> CapturedEvent:
    """`process_single_event`'s checks, in its order; the first failure refuses the request."""
    if event["event"] == "":
        raise CaptureError(400, "missing_event_name", "event submitted with an empty event name")
    distinct_id = extract_distinct_id(event)
    if distinct_id is None:
        raise CaptureError(400, "missing_distinct_id", "event submitted without a distinct_id")
    cookieless = event.get("properties", {}).get("$cookieless_mode", False)
    if not isinstance(cookieless, bool):
        raise CaptureError(
            400, "invalid_cookieless_mode", "event submitted with invalid cookieless mode"
        )
    return CapturedEvent(
        route,
        event,
        distinct_id,
        request.headers,
        arrival.now,
        timestamp=event_time(event=event, sent_at=arrival.sent_at, now=arrival.now),
        ip=event_ip(event=event, request_ip=arrival.ip),
    )


def _check_recording(event: dict[str, Any]) -> None:
    properties = event.get("properties", {})
    if not properties.get("$session_id"):
        raise CaptureError(400, "missing_session_id", "replay event submitted without session id")
    if "$snapshot_data" not in properties:
        raise CaptureError(
            400, "missing_snapshot_data", "replay event submitted without snapshot data"
        )
