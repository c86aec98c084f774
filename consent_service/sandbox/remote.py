"""Flags, legacy /decide/ and remote config answers (PROTOCOL 3.7), one configurable flag set."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from consent_service.sandbox.jsontext import parse_json
from consent_service.sandbox.transport import (
    EventQuery,
    compression_hint,
    decompress,
    extract_payload,
)
from consent_service.sandbox.wire import (
    CaptureError,
    Request,
    Response,
    capture_error,
    json_response,
)

FLAGS_DECODED_LIMIT = 8 * 1024 * 1024
CONFIG_PATH = re.compile(r"^/array/(?P<token>[^/]+)/config(?P<js>\.js)?$")
JAVASCRIPT = "application/javascript; charset=utf-8"
DEFAULT_FLAGS: dict[str, bool | str] = {"demo-flag": True}

FlagValues = Mapping[str, bool | str]


def flags_view(request: Request, flags: FlagValues) -> Response:
    """/flags/ (any `v`): the v2 shape, whichever version is asked for."""
    problem = _flags_body_problem(request)
    if problem is not None:
        return problem
    data = {
        "flags": {key: _flag_detail(key, value, index) for index, (key, value) in _numbered(flags)},
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
    }
    return json_response(200, data)


def decide_view(request: Request, flags: FlagValues) -> Response:
    """The legacy /decide/ shape, for old clients."""
    problem = _flags_body_problem(request)
    if problem is not None:
        return problem
    data = {
        "featureFlags": dict(flags),
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "supportedCompression": ["gzip", "gzip-js"],
        "sessionRecording": _session_recording(),
        "config": {"enable_collect_everything": True},
        "toolbarParams": {},
        "isAuthenticated": False,
        "siteApps": [],
        "capturePerformance": False,
        "autocapture_opt_out": False,
    }
    return json_response(200, data)


def config_view(path: str, flags: FlagValues) -> Response | None:
    """/array/<token>/config (JSON) and /config.js (script); None for other /array/ paths."""
    match = CONFIG_PATH.match(path)
    if match is None:
        return None
    token = match["token"]
    config = remote_config(token, has_flags=bool(flags))
    if not match["js"]:
        return json_response(200, config)
    key, value = json.dumps(token), json.dumps(config, separators=(",", ":"))
    script = (
        "(function(){window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {}; "
        f"window._POSTHOG_REMOTE_CONFIG[{key}] = {{config: {value}, siteApps: []}};}})();"
    )
    return Response(200, script.encode(), JAVASCRIPT)


def remote_config(token: str, *, has_flags: bool = True) -> dict[str, Any]:
    """Modelled on PostHog's remote_config.py, with recording switched on."""
    return {
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": has_flags,
        "captureDeadClicks": False,
        "capturePerformance": False,
        "autocapture_opt_out": False,
        "autocaptureExceptions": False,
        "analytics": {"endpoint": "/i/v0/e/"},
        "elementsChainAsString": True,
        "sessionRecording": _session_recording(),
        "heatmaps": False,
        "surveys": False,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
    }


def _session_recording() -> dict[str, Any]:
    return {
        "endpoint": "/s/",
        "consoleLogRecordingEnabled": True,
        "recorderVersion": "v2",
        "sampleRate": None,
        "minimumDurationMilliseconds": None,
        "linkedFlag": None,
        "networkPayloadCapture": None,
        "masking": None,
        "urlTriggers": [],
        "urlBlocklist": [],
        "eventTriggers": [],
        "scriptConfig": None,
    }


def _flags_body_problem(request: Request) -> Response | None:
    """The body must decode like a capture body and carry a project token."""
    if request.method != "POST":
        return capture_error(405, "method_not_allowed", "Use POST.")
    try:
        body = _flags_body(request)
    except CaptureError as exc:
        return exc.response()
    if not (body.get("token") or body.get("api_key") or request.params.get("token")):
        return capture_error(401, "ingest_key_required", "API key is missing from the request.")
    return None


def _flags_body(request: Request) -> dict[str, Any]:
    """Decoded as capture decodes (the flags service is not modelled more closely)."""
    query = EventQuery(compression=compression_hint(request.params.get("compression")))
    data, compression = extract_payload(
        body=request.body,
        query=query,
        content_type=request.header("content-type"),
        content_encoding=request.headers.get("content-encoding"),
    )
    text = decompress(data, compression, limit=FLAGS_DECODED_LIMIT, route="/flags/")
    body = parse_json(text)
    return body if isinstance(body, dict) else {}


def _numbered(flags: FlagValues) -> list[tuple[int, tuple[str, bool | str]]]:
    return list(enumerate(flags.items(), start=1))


def _flag_detail(key: str, value: bool | str, flag_id: int) -> dict[str, Any]:
    enabled = bool(value)
    reason: dict[str, Any] = (
        {"code": "condition_match", "condition_index": 0, "description": "Matched condition set 1"}
        if enabled
        else {"code": "no_condition_match", "condition_index": None, "description": "No match"}
    )
    return {
        "key": key,
        "enabled": enabled,
        "variant": value if isinstance(value, str) else None,
        "reason": reason,
        "metadata": {"id": flag_id, "version": 1, "payload": None},
    }
