"""The sandbox's own control plane under /_sandbox/: faults, inspection and reset.

These requests are not recorded in the store and never get faults, so a demo can always
inspect and clear."""

from __future__ import annotations

import json
from typing import Any

from consent_service.sandbox.dashboard import dashboard_html
from consent_service.sandbox.faults import Faults
from consent_service.sandbox.state import Sandbox
from consent_service.sandbox.store import CapturedEvent, CapturedRequest
from consent_service.sandbox.wire import Request, Response, json_response

CONTROL_PREFIX = "/_sandbox"
HTML = "text/html; charset=utf-8"
FAULT_FIELDS = {
    "status",
    "times",
    "retry_after",
    "latency_ms",
    "drop",
    "path_prefix",
    "event_name",
}


def control_view(request: Request, sandbox: Sandbox) -> Response:
    route = (request.method, request.path.removeprefix(CONTROL_PREFIX).rstrip("/"))
    if route == ("GET", ""):
        return Response(200, dashboard_html(sandbox).encode(), HTML)
    if route == ("GET", "/events.json"):
        return json_response(200, _events_json(sandbox, request.params.get("distinct_id")))
    if route == ("GET", "/requests.json"):
        return json_response(200, [_request_json(item) for item in sandbox.store.requests])
    if route == ("GET", "/persons.json"):
        return json_response(200, _persons_json(sandbox))
    if route == ("POST", "/reset"):
        sandbox.reset()
        return json_response(200, {"reset": True})
    if route == ("GET", "/cookieless"):
        return json_response(200, {"enabled": sandbox.cookieless_hash_mode})
    if route == ("POST", "/cookieless"):
        return _cookieless_set(request, sandbox)
    if route[1] == "/faults":
        return _faults_view(request, sandbox.faults)
    return json_response(404, {"error": "not found", "path": request.path})


def _cookieless_set(request: Request, sandbox: Sandbox) -> Response:
    """`{"enabled": bool}`: the project's cookieless server hash mode (until reset)."""
    try:
        spec = json.loads(request.body or b"{}")
    except ValueError:
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("enabled"), bool):
        return json_response(400, {"error": 'expected {"enabled": true|false}'})
    sandbox.cookieless_hash_mode = spec["enabled"]
    return json_response(200, {"enabled": sandbox.cookieless_hash_mode})


def _faults_view(request: Request, faults: Faults) -> Response:
    if request.method == "GET":
        return json_response(200, [fault.as_json() for fault in faults.pending])
    if request.method == "DELETE":
        return json_response(200, {"cleared": faults.clear()})
    if request.method != "POST":
        return json_response(405, {"error": "use GET, POST or DELETE"})
    try:
        spec = json.loads(request.body or b"{}")
        if not isinstance(spec, dict) or not set(spec) <= FAULT_FIELDS:
            raise ValueError(f"expected an object with keys among {sorted(FAULT_FIELDS)}")
        fault = faults.add(**spec)
    except (TypeError, ValueError) as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(201, fault.as_json())


def _events_json(sandbox: Sandbox, distinct_id: str | None) -> list[dict[str, Any]]:
    store = sandbox.store
    events = store.events if distinct_id is None else store.events_for(distinct_id)
    return [_event_json(event) for event in events]


def _event_json(event: CapturedEvent) -> dict[str, Any]:
    return {
        "route": event.route,
        "distinct_id": event.distinct_id,
        "personless": event.personless,  # deleting persons never deletes it
        "event": event.event,
        "headers": event.headers,
        "received_at": event.received_at.isoformat(),
        "timestamp": event.timestamp.isoformat(),  # the time PostHog would store
        "ip": event.ip,
    }


def _request_json(request: CapturedRequest) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "status": request.status,
        "headers": request.headers,
        "body_bytes": len(request.body),
        "received_at": request.received_at.isoformat(),
    }


def _persons_json(sandbox: Sandbox) -> dict[str, Any]:
    persons = sandbox.persons
    return {
        "persons": [person.as_json() for person in persons.all()],
        "deletions": [{**entry, "at": entry["at"].isoformat()} for entry in persons.deletions],
    }
