"""The one pooled HTTP client per process, the headers that may cross it, and bounded
calls through it.

Requests to PostHog are built from an allowlist: our cookies, Authorization, CSRF
tokens and hop-by-hop headers never leave, and X-Forwarded-For carries only the
client address we resolved (trusted proxies only), never a client-supplied chain, and
only as much of it as CONSENT_IP_MODE allows (client_address.py).
Every call has a total deadline, and what comes back is read up to a cap, decoded size
included (RELIABILITY.md P14, P19, P27).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from django.http import HttpRequest

from consent_service.core.conf import conf
from consent_service.core.http import PooledClient
from consent_service.proxy.client_address import upstream_ip
from consent_service.proxy.codecs import PayloadError, gunzip_bounded
from consent_service.proxy.deadline import deadline_after, deadline_at, deadline_transport

REQUEST_HEADERS = ("User-Agent", "Accept", "Accept-Language", "Origin", "Referer")
RESPONSE_HEADERS = frozenset(
    {"content-type", "cache-control", "etag", "last-modified", "expires", "retry-after", "vary"}
)
ENCODINGS = frozenset({"gzip", "br", "deflate", "identity"})


class UpstreamError(Exception):
    """PostHog failed, or answered more than we read or in an encoding we did not ask for."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


def _new_client() -> httpx.Client:
    settings = conf()
    limits = httpx.Limits(
        max_connections=settings.proxy_pool_size,
        max_keepalive_connections=settings.proxy_pool_size,
    )
    return httpx.Client(
        # pool: a request waits this long for a free connection, then gets a 503.
        timeout=httpx.Timeout(
            settings.proxy_read_timeout,
            connect=settings.proxy_connect_timeout,
            pool=settings.proxy_connect_timeout,
        ),
        transport=deadline_transport(limits=limits),
        follow_redirects=False,
        trust_env=False,  # no HTTP(S)_PROXY or .netrc credentials from the environment
    )


_pool = PooledClient(_new_client)


def client() -> httpx.Client:
    return _pool.get()


def post(
    url: str, *, content: bytes, headers: Mapping[str, str], query: Mapping[str, str]
) -> Answer:
    """POST and read the whole answer, bounded in time and size."""
    request = client().build_request(
        "POST", url, params=query, content=content, headers={**headers, "Accept-Encoding": "gzip"}
    )
    with opened(request) as response:
        return Answer(response.status_code, response.headers, read_capped(response))


@contextmanager
def opened(request: httpx.Request, when: float | None = None) -> Iterator[httpx.Response]:
    """Send under the deadline (`when`, or the configured one from now); close after."""
    when = when if when is not None else deadline_after(conf().proxy_deadline_seconds)
    with deadline_at(when):
        response = client().send(request, stream=True)
        try:
            yield response
        finally:
            response.close()


def read_capped(response: httpx.Response) -> bytes:
    cap = conf().proxy_max_response_bytes
    raw = bytearray()
    for chunk in response.iter_raw():
        raw += chunk
        if len(raw) > cap:
            raise UpstreamError("upstream_too_large", "PostHog's answer is larger than we read.")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        return bytes(raw)
    if encoding != "gzip":
        raise UpstreamError(
            "upstream_invalid", f"PostHog answered in an unasked encoding: {encoding}."
        )
    try:
        return gunzip_bounded(bytes(raw), cap)
    except PayloadError as exc:
        raise UpstreamError("upstream_invalid", f"PostHog's gzip answer: {exc.detail}") from exc


def upstream_headers(
    request: HttpRequest, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    address = upstream_ip(request)  # CONSENT_IP_MODE: under drop, no header at all
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
