"""A wall-clock deadline over a whole upstream call: connect, TLS, send, every byte back.

httpx's timeouts apply per socket operation, so an upstream that drips a byte a second
never trips them (RELIABILITY.md R-i, P19). Here every socket operation gets at most the
time left before the deadline set around the call, and none once it has passed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_deadline: ContextVar[float | None] = ContextVar("consent_proxy_deadline", default=None)


@contextmanager
def deadline_at(when: float) -> Iterator[None]:
    """Socket operations inside this block end by `when` (time.monotonic())."""
    token = _deadline.set(when)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_after(seconds: float) -> float:
    return time.monotonic() + seconds


def deadline_transport(*, limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's transport over a connection pool whose sockets honour the deadline.

    httpx offers no public hook for the network backend, so its pool is replaced by one
    built with the same settings and ours."""
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    assert isinstance(transport._pool, httpcore.ConnectionPool)  # fails loudly on upgrade
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_DeadlineBackend(),
    )
    return transport


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("The upstream call ran past its deadline.")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(super().connect_tcp(host, port, left, local_address, socket_options))
