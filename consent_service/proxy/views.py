"""The /ph/* view: a plain Django view, so DRF never touches the bodies it forwards."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from typing import Any

import httpx
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from consent_service.api.errors import ErrorBody, json_error
from consent_service.core.conf import conf
from consent_service.ledger.distinct_ids import distinct_ids_bind
from consent_service.proxy import stats
from consent_service.proxy.codecs import (
    Limits,
    Payload,
    PayloadError,
    decode_payload,
    encode_payload,
)
from consent_service.proxy.consent import actor_for, owners_of
from consent_service.proxy.gate import (
    event_ids,
    flags_allowed,
    flags_ids,
    gate,
    prepare,
    unknown_ids,
)
from consent_service.proxy.routes import Kind, Route, resolve_route
from consent_service.proxy.upstream import (
    asset_encoding,
    client,
    response_headers,
    upstream_headers,
)

logger = logging.getLogger("consent_service.proxy")
ACCEPTED = b'{"status": 1}'  # what posthog-js needs to not retry (PROTOCOL.md 2.8)
GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


@csrf_exempt
def proxy(request: HttpRequest, path: str) -> HttpResponseBase:
    route = resolve_route(path)
    if route is None:
        return _error(request, 404, "unknown_route", "Not a PostHog route.")
    if request.method not in route.methods:
        return _error(request, 405, "method_not_allowed", "Method not allowed on this route.")
    try:
        return _handle(request, route)
    except PayloadError as exc:
        return _error(request, exc.status, exc.code, exc.detail)
    except httpx.TimeoutException:
        return _error(request, 504, "upstream_timeout", "PostHog did not answer in time.")
    except httpx.TransportError:
        return _error(request, 502, "upstream_unreachable", "PostHog could not be reached.")
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


def _events(request: HttpRequest, route: Route, payload: Payload) -> HttpResponseBase:
    actor = actor_for(request)
    prepared = prepare(payload.events)
    owners = owners_of(unknown_ids(event_ids(prepared), actor))
    result = gate(prepared, recordings=route.recordings, actor=actor, owners=owners)
    stats.record(forwarded=len(result.kept), dropped=result.dropped)
    if actor is not None and result.to_bind:
        distinct_ids_bind(subject_id=actor.subject_id, distinct_ids=result.to_bind)
    if not result.kept:
        return _accepted_locally(result.dropped)
    body = encode_payload(payload.with_events(result.kept))
    upstream = client().post(
        conf().posthog_host + route.upstream_path,
        content=body,
        headers=upstream_headers(request, GZIP_JSON),
    )
    return _relay(upstream, result.dropped)


def _flags(request: HttpRequest, route: Route, payload: Payload) -> HttpResponseBase:
    """Before consent posthog-js still asks for flags; that answer never leaves us."""
    body = payload.events[0]
    actor = actor_for(request)
    owners = owners_of(unknown_ids(flags_ids(body), actor))
    if not flags_allowed(body, actor=actor, owners=owners):
        return HttpResponse(json.dumps(_no_flags()), content_type="application/json")
    upstream = client().post(
        conf().posthog_host + route.upstream_path,
        params=_kept_query(request, route),
        content=json.dumps(body, separators=(",", ":")).encode(),
        headers=upstream_headers(request, {"Content-Type": "application/json"}),
    )
    return _relay(upstream, Counter())


def _forward_asset(request: HttpRequest, route: Route) -> HttpResponseBase:
    """SDK files and remote config: no personal data in them, streamed as they come."""
    upstream_request = client().build_request(
        request.method or "GET",
        conf().posthog_assets_host + route.upstream_path,
        params=_kept_query(request, route),
        headers=upstream_headers(request, {"Accept-Encoding": asset_encoding(request)}),
    )
    upstream = client().send(upstream_request, stream=True)
    response = StreamingHttpResponse(
        _stream(upstream),
        status=upstream.status_code,
        headers=response_headers(upstream, raw_body=True),
    )
    return response


def _stream(upstream: httpx.Response) -> Any:
    try:
        yield from upstream.iter_raw()
    finally:
        upstream.close()


def _decode(request: HttpRequest) -> Payload:
    settings = conf()
    return decode_payload(
        body=_read_body(request, settings.proxy_max_body_bytes),
        query=request.GET,
        content_type=request.content_type or "",
        content_encoding=request.headers.get("Content-Encoding", ""),
        limits=Limits(settings.proxy_max_decoded_bytes, settings.proxy_max_events),
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


def _relay(upstream: httpx.Response, dropped: Counter[str]) -> HttpResponse:
    response = HttpResponse(
        upstream.content,
        status=upstream.status_code,
        headers=response_headers(upstream, raw_body=False),
    )
    _mark_dropped(response, dropped)
    return response


def _accepted_locally(dropped: Counter[str]) -> HttpResponse:
    response = HttpResponse(ACCEPTED, content_type="application/json")
    _mark_dropped(response, dropped)
    return response


def _mark_dropped(response: HttpResponse, dropped: Counter[str]) -> None:
    if dropped:
        response["X-Consent-Dropped"] = stats.dropped_header(dropped)


def _no_flags() -> dict[str, Any]:
    return {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
    }


def _error(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    error_type = "upstream_error" if status >= 500 else "client_error"
    return json_error(request, status, ErrorBody(error_type, code, detail))
