"""How much of the client's address PostHog may see: `CONSENT_IP_MODE` (README "IP
minimisation").

One decision for every path that carries an address upstream: the X-Forwarded-For of
synchronous routes, the IP the spool keeps for the forwarder's `$ip`, and whatever else
needs "the client IP" (PostHog's cookieless hash reads the same one).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from consent_service.core.conf import conf
from consent_service.core.network import client_ip, truncate_ip

FULL, TRUNCATE, DROP = "full", "truncate", "drop"
IP_MODES = (FULL, TRUNCATE, DROP)


def ip_minimised(address: str) -> str:
    """`address` as PostHog may see it: whole, its network address, or "" (nothing).

    Idempotent, so rows spooled under a laxer mode are cut again at delivery. An unknown
    mode (the system check refuses it) sends nothing rather than too much."""
    mode = conf().ip_mode
    if mode == FULL:
        return address
    return truncate_ip(address) if mode == TRUNCATE else ""


def upstream_ip(request: HttpRequest) -> str:
    """The trusted client address (core/network.py) cut to what PostHog may see."""
    return ip_minimised(client_ip(request))


def geoip_disabled() -> bool:
    """Under `drop` PostHog must not locate the event from the address it does get: ours."""
    return conf().ip_mode not in (FULL, TRUNCATE)


def event_ip_place(properties: dict[str, Any], *, address: str | None) -> None:
    """Set an event's `$ip` to what the mode allows of `address` (None: the event carries
    its IP only through the request header, as recordings do).

    PostHog keeps a client-supplied `$ip` (PROTOCOL.md 3.4), so one is never passed on:
    a backend or a browser could otherwise send a full address past the mode."""
    properties.pop("$ip", None)
    allowed = ip_minimised(address) if address else ""
    if allowed:
        properties["$ip"] = allowed
    if geoip_disabled():
        properties["$geoip_disable"] = True
