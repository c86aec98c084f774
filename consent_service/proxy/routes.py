"""The PostHog routes the proxy serves. Anything else is 404: the path picks a route from
this list, never a host, and only the route's own upstream path is ever requested.

Browser routes are the ones posthog-js uses. Backend SDKs have no visitor cookie; they
use the server route, `<prefix>/server/<secret>/`, set as the SDK's `host`. Routes that
neither uses (`/engage/`, `/track/`, `/capture/`) are not served.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from enum import Enum

from consent_service.core.conf import conf


class Kind(Enum):
    EVENTS = "events"
    FLAGS = "flags"
    ASSET = "asset"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Route:
    kind: Kind
    upstream_path: str
    methods: frozenset[str]
    query_keep: frozenset[str] = frozenset()
    recordings: bool = False  # /s/: every event is a session recording
    server: bool = False  # the authenticated route for backend SDKs


EVENT_ROUTES = ("e", "i/v0/e", "batch", "s")
SERVER_EVENT_ROUTES = ("batch", "e", "i/v0/e")
FLAG_ROUTES = ("flags", "decide")
# posthog-python's opt-in capture mode v1: a 400 (it retries a 404), so the SDK says why.
V1_CAPTURE = "i/v1/analytics/events"
SERVER_PREFIX = "server/"
# A segment may not start with a dot, so "." and ".." cannot appear.
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}"
_STATIC = re.compile(rf"^static/(?:{_SEGMENT}/){{0,3}}{_SEGMENT}$")
_ARRAY = re.compile(r"^array/[A-Za-z0-9_-]{1,128}/config(?:\.js)?$")
_SERVER = re.compile(r"^server/([^/]{1,256})/(.*)$")
_POST_GET = frozenset({"GET", "POST"})


def resolve_route(path: str) -> Route | None:
    if path.startswith(SERVER_PREFIX):
        return _server_route(path)
    name = path.removesuffix("/")
    if name in EVENT_ROUTES:
        return Route(Kind.EVENTS, f"/{name}/", _POST_GET, recordings=name == "s")
    if name in FLAG_ROUTES:
        return _flags_route(name, server=False)
    if _STATIC.match(path):
        return Route(Kind.ASSET, f"/{path}", frozenset({"GET", "HEAD"}), frozenset({"v"}))
    if _ARRAY.match(path):
        return Route(Kind.ASSET, f"/{path}", frozenset({"GET", "HEAD"}))
    return None


def mask_server_secret(text: str) -> str:
    """For logs: the secret segment of a server-route path, replaced."""
    return re.sub(rf"({re.escape(SERVER_PREFIX)})[^/\s?\"']+", r"\1***", text)


def _server_route(path: str) -> Route | None:
    match = _SERVER.match(path)
    secret = conf().proxy_server_secret
    if match is None or not secret or not hmac.compare_digest(match[1].encode(), secret.encode()):
        return None  # a wrong secret looks like any unknown path
    name = match[2].removesuffix("/")
    if name in SERVER_EVENT_ROUTES:
        return Route(Kind.EVENTS, f"/{name}/", frozenset({"POST"}), server=True)
    if name in FLAG_ROUTES:
        return _flags_route(name, server=True)
    if name == V1_CAPTURE:
        return Route(Kind.UNSUPPORTED, "", frozenset({"POST"}), server=True)
    return None


def _flags_route(name: str, *, server: bool) -> Route:
    return Route(Kind.FLAGS, f"/{name}/", _POST_GET, frozenset({"v", "config"}), server=server)
