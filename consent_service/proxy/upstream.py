"""The one pooled HTTP client per process, and the headers that may cross it.

Requests to PostHog are built from an allowlist: our cookies, Authorization, CSRF
tokens and hop-by-hop headers never leave, and X-Forwarded-For carries only the
client address we resolved (trusted proxies only), never a client-supplied chain.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from django.http import HttpRequest

from consent_service.core.conf import conf
from consent_service.core.http import PooledClient
from consent_service.core.network import client_ip

REQUEST_HEADERS = ("User-Agent", "Accept", "Accept-Language", "Origin", "Referer")
RESPONSE_HEADERS = frozenset(
    {"content-type", "cache-control", "etag", "last-modified", "expires", "retry-after", "vary"}
)
ENCODINGS = frozenset({"gzip", "br", "deflate", "identity"})


def _new_client() -> httpx.Client:
    settings = conf()
    return httpx.Client(
        timeout=httpx.Timeout(settings.proxy_read_timeout, connect=settings.proxy_connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.proxy_pool_size,
            max_keepalive_connections=settings.proxy_pool_size,
        ),
        follow_redirects=False,
        trust_env=False,  # no HTTP(S)_PROXY or .netrc credentials from the environment
    )


_pool = PooledClient(_new_client)


def client() -> httpx.Client:
    return _pool.get()


def upstream_headers(
    request: HttpRequest, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    address = client_ip(request)
    if address:
        headers["X-Forwarded-For"] = address
    return {**headers, **(extra or {})}


def asset_encoding(request: HttpRequest) -> str:
    """The client's Accept-Encoding, restricted to what we can pass through untouched."""
    offered = [
        part.split(";")[0].strip().lower()
        for part in request.headers.get("Accept-Encoding", "").split(",")
    ]
    return ", ".join(value for value in offered if value in ENCODINGS) or "identity"


def response_headers(upstream: httpx.Response, *, raw_body: bool) -> dict[str, str]:
    """Only describe the body; Set-Cookie and hop-by-hop headers never come back."""
    headers = {k: v for k, v in upstream.headers.items() if k.lower() in RESPONSE_HEADERS}
    encoding = upstream.headers.get("content-encoding")
    if raw_body and encoding:
        headers["Content-Encoding"] = encoding
    return headers
