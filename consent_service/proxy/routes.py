"""The PostHog routes the proxy serves. Anything else is 404: the path picks a route from
this list, never a host, and only the route's own upstream path is ever requested."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    EVENTS = "events"
    FLAGS = "flags"
    ASSET = "asset"


@dataclass(frozen=True)
class Route:
    kind: Kind
    upstream_path: str
    methods: frozenset[str]
    query_keep: frozenset[str] = frozenset()
    recordings: bool = False  # /s/: every event is a session recording


EVENT_ROUTES = ("e", "i/v0/e", "batch", "capture", "track", "engage", "s")
FLAG_ROUTES = ("flags", "decide")
# A segment may not start with a dot, so "." and ".." cannot appear.
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}"
_STATIC = re.compile(rf"^static/(?:{_SEGMENT}/){{0,3}}{_SEGMENT}$")
_ARRAY = re.compile(r"^array/[A-Za-z0-9_-]{1,128}/config(?:\.js)?$")
_EVENT_METHODS = frozenset({"GET", "POST"})


def resolve_route(path: str) -> Route | None:
    name = path[:-1] if path.endswith("/") else path
    if name in EVENT_ROUTES:
        return Route(Kind.EVENTS, f"/{name}/", _EVENT_METHODS, recordings=name == "s")
    if name in FLAG_ROUTES:
        return Route(Kind.FLAGS, f"/{name}/", _EVENT_METHODS, frozenset({"v", "config"}))
    if _STATIC.match(path):
        return Route(Kind.ASSET, f"/{path}", frozenset({"GET", "HEAD"}), frozenset({"v"}))
    if _ARRAY.match(path):
        return Route(Kind.ASSET, f"/{path}", frozenset({"GET", "HEAD"}))
    return None
