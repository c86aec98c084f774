"""The /ph/* view: a plain Django view, so DRF never touches the bodies it forwards.

Event routes always answer the same bytes and headers when the request was well formed,
whether its events were forwarded, partly dropped or all dropped (RELIABILITY.md P28):
what was kept is nobody's business but the staff stats and the logs.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from consent_service.api.errors import ErrorBody, json_error
from consent_service.core import metrics
from consent_service.core.conf import conf
from consent_service.ledger.distinct_ids import distinct_id_claimable, distinct_id_is_valid
from consent_service.proxy import stats
from consent_service.proxy.client_address import event_ip_place, geoip_disabled, upstream_ip
from consent_service.proxy.codecs import Limits, Payload, PayloadError, decode_payload
from consent_service.proxy.consent import caller_for, claims_bind, owners_of
from consent_service.proxy.cookieless import NO_SUBJECT
from consent_service.proxy.deadline import deadline_after, deadline_at
from consent_service.proxy.envelope import (
    encode_json,
    event_problem,
    flags_document,
    gzip_json,
    is_timestamp,
    rebuilt_event,
    recording_document,
    token_of,
)
from consent_service.proxy.gate import (
    GateResult,
    Kept,
    gate_for_caller,
    gate_for_owners,
    named_ids,
    settle,
)
from consent_service.proxy.routes import Kind, Route, resolve_route
from consent_service.proxy.throttle import proxy_rate_check
from consent_service.proxy.upstream import (
    UpstreamError,
    asset_encoding,
    client,
    post,
    response_headers,
    upstream_headers,
)
from consent_service.spool.store import Entry, spool_append, spool_full

logger = logging.getLogger("consent_service.proxy")
ACCEPTED = b'{"status": 1}'  # what posthog-js needs to not retry (PROTOCOL.md 2.8)
GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
FLAGS_ID_KEYS = ("$anon_distinct_id", "$device_id", "device_id")


class SpoolUnavailable(Exception):
    """The spool refused a write: nothing was acknowledged, posthog-js retries a 503."""


# Never one transaction around the request (a host's ATOMIC_REQUESTS): the spool commits its
# own, and a flags or recording call to PostHog must not hold the database meanwhile.
@transaction.non_atomic_requests
@csrf_exempt
def proxy(request: HttpRequest, path: str) -> HttpResponseBase:
    route = resolve_route(path)
    response = _answer(request, route)
    metrics.proxy_requests(_route_label(route), response.status_code).inc()
    return response


def _route_label(route: Route | None) -> str:
    """A few fixed values: never the path, which holds asset names and the server secret."""
    if route is None:
        return "unknown"
    if route.kind is Kind.ASSET:
        return "static" if route.upstream_path.startswith("/static/") else "config"
    name = "unsupported" if route.kind is Kind.UNSUPPORTED else route.upstream_path.strip("/")
    return f"server/{name}" if route.server else name


def _answer(request: HttpRequest, route: Route | None) -> HttpResponseBase:
    if route is None:
        return _error(request, 404, "unknown_route", "Not a PostHog route.")
    if request.method not in route.methods:
        return _error(request, 405, "method_not_allowed", "Method not allowed on this route.")
    if route.kind is Kind.UNSUPPORTED:
        detail = "Capture mode v1 is not supported: use the SDK's default capture mode."
        return _error(request, 400, "unsupported_capture_mode", detail)
    rate = proxy_rate_check(request, route)
    if not rate.allowed:
        response = _error(request, 503, "rate_limited", "Too many requests; retry later.")
        response["Retry-After"] = str(rate.retry_after)
        # Expected under a flood: Django would log every such 503 as a server error.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    try:
        return _handle(request, route)
    except PayloadError as exc:
        return _error(request, exc.status, exc.code, exc.detail)
    except UpstreamError as exc:
        logger.warning("PostHog: %s", exc.detail)
        return _error(request, 502, exc.code, exc.detail)
    except httpx.PoolTimeout:
        return _error(request, 503, "upstream_busy", "Every connection to PostHog is busy.")
    except httpx.TimeoutException:
        return _error(request, 504, "upstream_timeout", "PostHog did not answer in time.")
    except httpx.TransportError:
        return _error(request, 502, "upstream_unreachable", "PostHog could not be reached.")
    except SpoolUnavailable:
        logger.exception("proxy could not write to the spool")
        return _error(request, 503, "spool_unavailable", "Events could not be stored; retry.")
    except DatabaseError:
        # Consent could not be read: refuse for now, and posthog-js retries a 503 later.
        logger.exception("proxy could not read consent")
        return _error(request, 503, "consent_unavailable", "Consent could not be checked.")


def _handle(request: HttpRequest, route: Route) -> HttpResponseBase:
    if route.kind is Kind.ASSET:
        return _forward_asset(request, route)
    payload = _decode(request)
    if route.kind is Kind.FLAGS:
        return _flags(request, route, payload)
    return _events(request, route, payload)


# --- events -----------------------------------------------------------------------------


def _events(request: HttpRequest, route: Route, payload: Payload) -> HttpResponse:
    if not route.recordings and spool_full():
        detail = "Too many events wait for PostHog; retry later."
        response = _error(request, 503, "spool_full", detail)
        response["Retry-After"] = "60"
        return response
    token = conf().posthog_api_key
    screened, result = _screen(payload, token)
    if screened:
        gated = _gate(request, route, screened)
        result.dropped.update(gated.dropped)
        result.kept, result.stripped = gated.kept, gated.stripped
    stats.record(forwarded=len(result.kept), dropped=result.dropped, stripped=result.stripped)
    if result.kept and route.recordings:
        _send_recordings(request, route, result.kept)
    elif result.kept:
        _spool_events(request, result.kept, payload.envelope.get("sent_at"))
    return HttpResponse(ACCEPTED, content_type="application/json")


def _screen(payload: Payload, token: str) -> tuple[list[dict[str, Any]], GateResult]:
    """The events PostHog may see at all: our project's, named, well formed."""
    result = GateResult()
    if not token:
        result.dropped["analytics_off"] += len(payload.events)
        return [], result
    if token_of(payload.envelope) not in (None, token):
        result.dropped["foreign_token"] += len(payload.events)
        return [], result
    screened = []
    for event in payload.events:
        problem = event_problem(event, token)
        if problem is None:
            screened.append(event)
        else:
            result.dropped[problem] += 1
    return screened, result


def _gate(request: HttpRequest, route: Route, events: list[dict[str, Any]]) -> GateResult:
    if route.server:
        owners = owners_of(i for event in events for i in named_ids(event))
        result = gate_for_owners(events, owners=owners, claimable=distinct_id_is_valid)
    else:
        result = _gate_for_caller(request, route, events)
    settle(result, claims_bind(result.claims()))
    return result


def _gate_for_caller(
    request: HttpRequest, route: Route, events: list[dict[str, Any]]
) -> GateResult:
    caller = caller_for(request)
    owners = {}
    if caller is not None and caller.grant.analytics:  # else nothing is looked up
        owners = owners_of({i for e in events for i in named_ids(e) if i not in caller.ids})
    return gate_for_caller(
        events,
        caller=caller,
        owners=owners,
        claimable=distinct_id_claimable,
        recordings=route.recordings,
        cookieless=route.kind is Kind.EVENTS and conf().cookieless_on_reject,
    )


def _spool_events(request: HttpRequest, kept: list[Kept], sent_at: Any) -> None:
    """Acknowledged once the spool has them; the forwarder delivers them (forwarder.py).
    Each event carries a uuid, so PostHog deduplicates a resend."""
    received_at = time.time()
    by_subject: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in kept:
        # A cookieless event was rebuilt by the gate, from its allowlist, without a person.
        cookieless = entry.subject_id == NO_SUBJECT
        event = entry.event if cookieless else rebuilt_event(entry.event, entry.distinct_id)
        event.setdefault("uuid", str(uuid.uuid4()))
        by_subject[entry.subject_id].append(event)
    entries = [
        Entry(subject_id, encode_json(events).decode(), len(events))
        for subject_id, events in by_subject.items()
    ]
    try:
        spool_append(
            entries=entries,
            received_at=received_at,
            sent_at=sent_at if is_timestamp(sent_at) else "",
            ip=upstream_ip(request),  # already cut: a full IP never sits in the spool
        )
    except DatabaseError as exc:
        raise SpoolUnavailable from exc


def _send_recordings(request: HttpRequest, route: Route, kept: list[Kept]) -> None:
    """Recordings still go at once: one /s/ request is one session's snapshot batch."""
    settings = conf()
    events = [rebuilt_event(entry.event, entry.distinct_id, erasable=False) for entry in kept]
    for event in events:  # their IP travels in the header only
        event_ip_place(event["properties"], address=None)
    document = recording_document(events, token=settings.posthog_api_key)
    answer = post(
        settings.posthog_host + route.upstream_path,
        content=gzip_json(document),
        headers=upstream_headers(request, GZIP_JSON),
        query={},
    )
    if answer.status >= 500:
        raise UpstreamError("upstream_failed", f"PostHog answered {answer.status}.")
    if answer.status >= 400:
        # A body we built was refused: retrying it would fail the same way.
        logger.error(
            "PostHog refused %s events (%s): %r", len(events), answer.status, answer.body[:200]
        )
        stats.record(forwarded=0, dropped={"upstream_refused": len(events)})


# --- flags ------------------------------------------------------------------------------


def _flags(request: HttpRequest, route: Route, payload: Payload) -> HttpResponse:
    """Before consent posthog-js still asks for flags; that answer never leaves us."""
    settings = conf()
    body = payload.events[0] if payload.shape == "single" else None
    if not isinstance(body, dict) or token_of(body) not in (None, settings.posthog_api_key):
        return _no_flags()
    probe = _flags_probe(body)
    result = _gate(request, route, [probe]) if settings.posthog_api_key else GateResult()
    if not result.kept:
        return _no_flags()
    ids = {"distinct_id": result.kept[0].distinct_id, **_kept_flag_ids(body, probe)}
    document = flags_document(body, token=settings.posthog_api_key, ids=ids)
    if geoip_disabled():  # PostHog would locate our server's address instead
        document["geoip_disable"] = True
    answer = post(
        settings.posthog_host + route.upstream_path,
        content=json.dumps(document, separators=(",", ":")).encode(),
        headers=upstream_headers(request, {"Content-Type": "application/json"}),
        query=_kept_query(request, route),
    )
    if answer.status >= 500:
        raise UpstreamError("upstream_failed", f"PostHog answered {answer.status}.")
    return HttpResponse(answer.body, status=answer.status, content_type="application/json")


def _flags_probe(body: dict[str, Any]) -> dict[str, Any]:
    """The flags body as an event, so the gate judges its ids as it judges any event's."""
    device = body.get("$device_id", body.get("device_id"))
    properties = {"$anon_distinct_id": body.get("$anon_distinct_id"), "$device_id": device}
    return {
        "event": "$feature_flag_request",
        "distinct_id": body.get("distinct_id"),
        "properties": {key: value for key, value in properties.items() if value is not None},
    }


def _kept_flag_ids(body: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    kept = probe["properties"]
    device_key = "$device_id" if "$device_id" in body else "device_id"
    names = {"$anon_distinct_id": "$anon_distinct_id", device_key: "$device_id"}
    return {key: kept[name] for key, name in names.items() if name in kept}


def _no_flags() -> HttpResponse:
    body = {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
    }
    return HttpResponse(json.dumps(body), content_type="application/json")


# --- assets -----------------------------------------------------------------------------


def _forward_asset(request: HttpRequest, route: Route) -> HttpResponseBase:
    """SDK files and remote config: no personal data in them, streamed as they come."""
    upstream_request = client().build_request(
        request.method or "GET",
        conf().posthog_assets_host + route.upstream_path,
        params=_kept_query(request, route),
        headers=upstream_headers(request, {"Accept-Encoding": asset_encoding(request)}),
    )
    when = deadline_after(conf().proxy_deadline_seconds)
    with deadline_at(when):
        upstream = client().send(upstream_request, stream=True)
    return StreamingHttpResponse(
        _stream(upstream, when),
        status=upstream.status_code,
        headers=response_headers(upstream, raw_body=True),
    )


def _stream(upstream: httpx.Response, when: float) -> Iterator[bytes]:
    """Raw bytes (their Content-Encoding kept), within the deadline and the size cap."""
    left = conf().proxy_max_response_bytes
    chunks = upstream.iter_raw()
    try:
        while left > 0:
            with deadline_at(when):
                chunk = next(chunks, None)
            if chunk is None:
                return
            left -= len(chunk)
            yield chunk
    except httpx.TransportError:
        logger.warning("asset stream from PostHog cut short")
    finally:
        upstream.close()


# --- plumbing ---------------------------------------------------------------------------


def _decode(request: HttpRequest) -> Payload:
    settings = conf()
    return decode_payload(
        body=_read_body(request, settings.proxy_max_body_bytes),
        query=request.GET,
        content_type=request.content_type or "",
        content_encoding=request.headers.get("Content-Encoding", ""),
        limits=Limits(
            settings.proxy_max_decoded_bytes, settings.proxy_max_events, settings.proxy_max_depth
        ),
    )


def _read_body(request: HttpRequest, cap: int) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise PayloadError(400, "invalid_length", "Content-Length is not a number.") from exc
    if declared > cap:
        raise PayloadError(413, "payload_too_large", "Request body is too large.")
    try:
        body = request.read(cap + 1)
    except OSError as exc:  # the client went away mid-body
        raise PayloadError(400, "truncated_body", "Request body could not be read.") from exc
    if len(body) > cap:
        raise PayloadError(413, "payload_too_large", "Request body is too large.")
    if len(body) < declared:
        raise PayloadError(400, "truncated_body", "Request body is shorter than declared.")
    return body


def _kept_query(request: HttpRequest, route: Route) -> dict[str, str]:
    return {key: request.GET[key] for key in route.query_keep if key in request.GET}


def _error(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    error_type = "upstream_error" if status >= 500 else "client_error"
    return json_error(request, status, ErrorBody(error_type, code, detail))
