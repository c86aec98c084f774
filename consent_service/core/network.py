"""The client address as far as we can trust it, and its truncated form for evidence."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from consent_service.core.conf import conf


def client_ip(request: HttpRequest) -> str:
    """Walk X-Forwarded-For from the right while the hop is a trusted proxy.

    A client can put anything on the left of the chain, so only addresses added
    by proxies we run are believed; with no trusted proxies the socket peer wins.
    """
    peer = str(request.META.get("REMOTE_ADDR", ""))
    trusted = conf().trusted_proxies
    if not trusted or not _in_networks(peer, trusted):
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    chain = [hop.strip() for hop in forwarded.split(",")]
    address = peer
    for hop in reversed([hop for hop in chain if hop]):
        if not _is_ip(hop):
            break
        address = hop
        if not _in_networks(hop, trusted):
            break
    return address


def truncate_ip(address: str) -> str:
    """Keep the /24 of IPv4 and the /48 of IPv6: enough for evidence, not a person."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client: keep its /24
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _in_networks(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
