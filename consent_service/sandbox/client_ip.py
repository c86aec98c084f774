"""The IP PostHog records for an event (PROTOCOL 3.4).

Legacy capture reads the request's IP with axum-client-ip's `InsecureClientIp`: the
leftmost address of `X-Forwarded-For`, else `X-Real-Ip`, else the socket peer. (That
extractor also reads rarer headers, such as `Forwarded`; the sandbox does not.) Ingestion
then writes it into `properties.$ip` unless the event already has one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from consent_service.sandbox.event_fields import json_text


def request_ip(*, headers: Mapping[str, str], peer: str | None) -> str | None:
    """The client IP as capture reads it; `headers` have lower-cased names."""
    forwarded = headers.get("x-forwarded-for", "").split(",")
    candidates = [*forwarded, headers.get("x-real-ip", ""), peer or ""]
    return next(filter(None, map(_address, candidates)), None)


def event_ip(*, event: Mapping[str, Any], request_ip: str | None) -> str | None:
    """A client-supplied `$ip` is kept as sent; otherwise the request's IP is written."""
    properties = event.get("properties")
    if not isinstance(properties, dict) or "$ip" not in properties:
        return request_ip
    value = properties["$ip"]
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


def _address(text: str) -> str | None:
    """The address in its canonical form, or None when `text` is not one. Values that are
    not addresses are skipped, as the extractor skips them; Rust takes no zone index."""
    candidate = text.strip()
    if "%" in candidate:
        return None
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
