"""Maps a request to the function answering it."""

from __future__ import annotations

from consent_service.sandbox.capture import capture_accept, capture_route
from consent_service.sandbox.control import CONTROL_PREFIX, control_view
from consent_service.sandbox.cookieless import cookieless_ingest
from consent_service.sandbox.faults import Fault
from consent_service.sandbox.persons_api import persons_view
from consent_service.sandbox.remote import config_view, decide_view, flags_view
from consent_service.sandbox.state import Sandbox
from consent_service.sandbox.static import static_view
from consent_service.sandbox.wire import (
    CaptureError,
    Request,
    Response,
    capture_error,
    error_for_path,
    json_response,
)

HEALTH_PATHS = {"/", "/_readiness", "/_liveness"}
# PostHog's answer to an event it cannot process (`NonRetryableSinkError` in capture api.rs).
EVENT_REFUSED = (400, "invalid_event", "invalid event could not be processed")


def dispatch(request: Request, sandbox: Sandbox) -> Response:
    path = request.path
    if request.method == "OPTIONS":
        return Response(200)
    route = capture_route(path)
    if route is not None:
        return _capture(request, route, sandbox)
    if path.startswith("/api/"):
        return persons_view(
            request,
            persons=sandbox.persons,
            personal_api_key=sandbox.personal_api_key,
            project_id=sandbox.project_id,
        )
    if path in ("/flags", "/flags/"):
        return flags_view(request, sandbox.flags)
    if path in ("/decide", "/decide/"):
        return decide_view(request, sandbox.flags)
    if path.startswith("/static/"):
        return static_view(path.removeprefix("/static/"), sandbox.static_root)
    if is_control(path):
        return control_view(request, sandbox)
    if path in HEALTH_PATHS:
        return json_response(200, {"status": "ok"})
    config = config_view(path, sandbox.flags) if path.startswith("/array/") else None
    return config or json_response(404, {"error": "not found", "path": path})


def with_cors(request: Request, response: Response) -> Response:
    """Capture mirrors the Origin and allows credentials (PROTOCOL 3.1)."""
    origin = request.header("origin")
    if origin and not request.path.startswith("/api/"):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            asked = request.header("access-control-request-headers")
            response.headers["Access-Control-Allow-Headers"] = asked or "*"
    return response


def is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def fault_response(fault: Fault, path: str) -> Response:
    """The answer a status fault gives, shaped like the route's real errors."""
    assert fault.status is not None
    if fault.event_name is not None and fault.status == 400:
        return capture_error(*EVENT_REFUSED)
    detail = "Injected by the sandbox."
    if fault.status == 429 and fault.retry_after and fault.retry_after.isdigit():
        detail = f"Request was throttled. Expected available in {fault.retry_after} seconds."
    response = error_for_path(path, fault.status, _fault_code(fault.status), detail)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = fault.retry_after
    return response


def _fault_code(status: int) -> str:
    return {429: "throttled", 503: "service_unavailable"}.get(status, "sandbox_fault")


def _capture(request: Request, route: str, sandbox: Sandbox) -> Response:
    if request.method not in ("GET", "POST"):
        return capture_error(405, "method_not_allowed", "Use GET or POST.")
    try:
        accepted = capture_accept(request=request, route=route, project_token=sandbox.project_token)
    except CaptureError as exc:
        return exc.response()
    names = {str(captured.event["event"]) for captured in accepted.events}
    fault = sandbox.faults.take_for_events(request.path, names)
    if fault is not None:
        return fault_response(fault, request.path)
    # Capture answers 200 for what ingestion later drops; persons decide what is kept.
    events = cookieless_ingest(
        accepted.events, enabled=sandbox.cookieless_hash_mode, salts=sandbox.salts
    )
    kept = sandbox.persons.ingest(events, generation=request.generation)
    sandbox.store.add_events(kept, generation=request.generation)
    if accepted.beacon:
        return Response(204)
    return json_response(200, {"status": 1})
