"""PostHog's private persons API (PROTOCOL.md section 4): the only code that calls it.

Every call returns an ApiCall saying what happened and what to do next, never raises
for an HTTP or network failure: the erasure worker records each call as an attempt.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx

from consent_service.core import metrics
from consent_service.core.conf import conf
from consent_service.core.http import PooledClient

BULK_LIMIT = 1000  # PostHog refuses more distinct_ids per bulk_delete
BODY_KEEP = 2000
MAX_RETRY_AFTER = 24 * 3600.0


class Verdict(StrEnum):
    OK = "ok"  # done
    GONE = "gone"  # nothing to delete: already gone, counts as done
    RETRY = "retry"  # throttled, server error or network: try again later
    # 404 where only a missing route or project can answer it (a wrong project id or
    # host): not "already gone". Keep trying, loudly, until the configuration is fixed.
    MISCONFIGURED = "misconfigured"
    FATAL = "fatal"  # refused (400/401/403): retrying cannot help


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    verdict: Verdict
    status: int | None = None
    body: str = ""
    retry_after: float | None = None
    error: str = ""
    duration_ms: int = 0


def _new_client() -> httpx.Client:
    settings = conf()
    return httpx.Client(
        base_url=settings.posthog_app_host,
        timeout=httpx.Timeout(settings.posthog_api_timeout, connect=3.0),
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
        follow_redirects=False,
        trust_env=False,  # no HTTP(S)_PROXY or .netrc credentials from the environment
    )


_pool = PooledClient(_new_client)


def client() -> httpx.Client:
    return _pool.get()


def persons_bulk_delete(*, distinct_ids: list[str]) -> ApiCall:
    """Delete the persons owning these ids, with their events and recordings."""
    if not 0 < len(distinct_ids) <= BULK_LIMIT:
        raise ValueError(f"bulk_delete takes 1 to {BULK_LIMIT} distinct_ids")
    body = {"distinct_ids": distinct_ids, "delete_events": True, "delete_recordings": True}
    call = _call("persons_bulk_delete", "POST", _persons_path("bulk_delete/"), json=body)
    if call.verdict is Verdict.OK and _found_nobody(call.body):
        return _with_verdict(call, Verdict.GONE)
    return call


def persons_find(*, distinct_id: str) -> tuple[ApiCall, list[str]]:
    call = _call("persons_find", "GET", _persons_path(""), params={"distinct_id": distinct_id})
    if call.verdict is not Verdict.OK:
        return call, []
    uuids = [
        str(person.get("uuid") or person.get("id"))
        for person in _json(call.body).get("results", [])
    ]
    return (call if uuids else _with_verdict(call, Verdict.GONE)), uuids


def persons_probe() -> ApiCall:
    """The cheapest call that proves the key can read this project's persons."""
    return _call("persons_probe", "GET", _persons_path(""), params={"limit": "1"})


def person_delete(*, person_uuid: str) -> ApiCall:
    """After a find that proved the project exists, a 404 is the person already gone."""
    # PostHog checks these flags by presence: "=true" is for the reader, not the server.
    params = {"delete_events": "true", "delete_recordings": "true"}
    call = _call("person_delete", "DELETE", _persons_path(f"{person_uuid}/"), params=params)
    if call.verdict is Verdict.MISCONFIGURED:
        return _with_verdict(call, Verdict.GONE)
    return call


def _persons_path(suffix: str) -> str:
    return f"/api/projects/{conf().posthog_project_id}/persons/{suffix}"


def _call(endpoint: str, method: str, path: str, **kwargs: Any) -> ApiCall:
    """`endpoint`: the metrics label, a fixed name (the path holds a person's uuid)."""
    started = time.perf_counter()
    call = _send(method, path, **kwargs)
    status = str(call.status) if call.status is not None else call.error.partition(":")[0]
    metrics.POSTHOG_API_REQUESTS.labels(endpoint, status).inc()
    metrics.POSTHOG_API_DURATION.labels(endpoint).observe(time.perf_counter() - started)
    return call


def _send(method: str, path: str, **kwargs: Any) -> ApiCall:
    headers = {"Authorization": f"Bearer {conf().posthog_personal_api_key}"}
    started = time.monotonic()
    try:
        response = client().request(method, path, headers=headers, **kwargs)
    except httpx.TimeoutException as exc:
        return ApiCall(
            method,
            path,
            Verdict.RETRY,
            error=f"timeout: {type(exc).__name__}",
            duration_ms=_ms(started),
        )
    except httpx.TransportError as exc:
        return ApiCall(
            method,
            path,
            Verdict.RETRY,
            error=f"network: {type(exc).__name__}: {exc}",
            duration_ms=_ms(started),
        )
    return ApiCall(
        method,
        path,
        _verdict(response.status_code),
        status=response.status_code,
        body=response.text[:BODY_KEEP],
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        duration_ms=_ms(started),
    )


def _verdict(status: int) -> Verdict:
    if 200 <= status < 300:
        return Verdict.OK
    if status == 404:  # an empty search is a 200: "nobody has that id" never looks like this
        return Verdict.MISCONFIGURED
    if status == 429 or status >= 500 or status == 408:
        return Verdict.RETRY
    return Verdict.FATAL


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):  # "nan" or "inf" would never come due
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _found_nobody(body: str) -> bool:
    return _json(body).get("persons_found") == 0


def _json(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _with_verdict(call: ApiCall, verdict: Verdict) -> ApiCall:
    return replace(call, verdict=verdict)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
