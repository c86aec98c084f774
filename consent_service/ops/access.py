"""Who may read /metrics: the configured networks, or whoever holds the metrics token."""

from __future__ import annotations

import hmac
import ipaddress

from django.http import HttpRequest

from consent_service.core.conf import Network, conf
from consent_service.core.network import client_ip

# Headers a reverse proxy adds. Sent by a peer we were not told to trust, they mean the
# socket address (often 127.0.0.1) is the proxy's and says nothing about the caller.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def metrics_allowed(request: HttpRequest) -> bool:
    return _token_matches(request) or _from_allowed_network(request)


def _token_matches(request: HttpRequest) -> bool:
    token = conf().metrics_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _from_allowed_network(request: HttpRequest) -> bool:
    settings = conf()
    peer = str(request.META.get("REMOTE_ADDR", ""))
    forwarded = any(name in request.headers for name in FORWARDING_HEADERS)
    if forwarded and not _within(peer, settings.trusted_proxies):
        return False
    return _within(client_ip(request), settings.metrics_allowed_networks)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket shows 127.0.0.1 as ::ffff:127.0.0.1
    return any(ip in network for network in networks)
