"""/static/<path>: posthog-js bundles from node_modules, as PostHog's assets host serves them."""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from urllib.parse import unquote

from consent_service.sandbox.wire import Response, capture_error

DEFAULT_STATIC_ROOT = Path(__file__).resolve().parents[2] / "node_modules/posthog-js/dist"
VERSION_SEGMENT = re.compile(r"^v?\d+\.\d+\.\d+[\w.+-]*$")
CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
}


def static_view(path: str, root: Path | None) -> Response:
    """`path` is what follows /static/; /static/<version>/<file> serves <file>."""
    target = _resolve(path, root)
    if target is None:
        return capture_error(404, "not_found", "Not found.")
    return Response(200, target.read_bytes(), _content_type(target))


def _resolve(path: str, root: Path | None) -> Path | None:
    """The file inside `root`, or None; anything resolving outside `root` is refused."""
    if root is None:
        return None
    decoded = unquote(path)
    parts = [part for part in decoded.split("/") if part]
    if len(parts) > 1 and VERSION_SEGMENT.match(parts[0]):
        parts = parts[1:]
    if not parts or "\x00" in decoded:
        return None
    base = root.resolve()
    try:
        target = base.joinpath(*parts).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def _content_type(target: Path) -> str:
    known = CONTENT_TYPES.get(target.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(target.name)
    return guessed or "application/octet-stream"
