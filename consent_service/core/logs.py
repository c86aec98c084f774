"""Log lines: the request id on every record, and the two formats (`LOG_FORMAT`).

`text` (the default) is one readable line per record; `json` is one JSON object per line
with `time`, `level`, `logger`, `message`, `request_id`, any simple `extra` fields, and a
traceback as the single field `exc_info`. Both mask the backend-SDK route's secret
(`/server/<secret>` → `/server/***`) in the message, so no handler sees it.

Stdlib only at import time: gunicorn's config (deploy/gunicorn.conf.py) imports this module
before Django is set up.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOG_FORMATS = ("text", "json")
# Where RequestIdMiddleware keeps a request's id: Django logs a 4xx/5xx response
# (`django.request`) after the middleware returned, with the request on the record.
REQUEST_ID_ATTR = "_consent_request_id"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "consent_request_id", default=None
)

_SERVER_SECRET = re.compile(r"(/server/)[^/\s?\"']+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Attributes every LogRecord has: anything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}
# `extra` fields never written: Django's `request` (its repr holds the path and query).
_NEVER_WRITTEN = frozenset({"request"})
_SIMPLE = (str, int, float, bool)
# One encoder: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)
_second: tuple[int, str] = (-1, "")  # the last second formatted, reused within it


def request_id_bind(value: str | None) -> contextvars.Token[str | None]:
    """Every record logged in this context (thread, task) carries `value` as request_id."""
    return _request_id.set(value)


def request_id_reset(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def log_context(value: str | None = None) -> Iterator[str]:
    """A request id for what runs inside: `value`, or a new one (a worker's round)."""
    bound = value or uuid.uuid4().hex
    token = _request_id.set(bound)
    try:
        yield bound
    finally:
        _request_id.reset(token)


def mask_secrets(text: str) -> str:
    """The server route's secret segment, replaced: `/<prefix>/server/***/batch/`."""
    return _SERVER_SECRET.sub(r"\1***", text) if "/server/" in text else text


def loggable_path(path: str) -> str:
    """A request path for a log line: secret masked, control characters replaced. The caller
    passes the path without its query string."""
    if not path.isprintable():
        path = _CONTROL.sub("?", path)
    return mask_secrets(path)


def log_hash(value: object) -> str:
    """A short keyed hash for a log line that needs to correlate a person (a user id)
    without naming them; the key is SECRET_KEY, so it is not reversible by guessing."""
    from django.utils.crypto import salted_hmac  # Django settings: only when called

    return salted_hmac("consent_service.core.logs", str(value)).hexdigest()[:12]


class RequestIdFilter(logging.Filter):
    """On the handler: every record it writes gets `request_id` (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id_of(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback is one string field, never several lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "request_id": _request_id_of(record),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_FIELDS or key in _NEVER_WRITTEN:
                continue
            if isinstance(value, str):
                entry[key] = mask_secrets(value)
            elif value is None or isinstance(value, _SIMPLE):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = mask_secrets(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = mask_secrets(self.formatStack(record.stack_info))
        return _ENCODER.encode(entry)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <message> [request_id=<id>]`, one line per message (a
    traceback follows on its own lines, as usual)."""

    def format(self, record: logging.LogRecord) -> str:
        message = mask_secrets(record.getMessage())
        if not message.isprintable():  # a path with a newline must not forge a line
            message = message.replace("\n", "\\n").replace("\r", "\\r")
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {message}"
        request_id = _request_id_of(record)
        if request_id:
            line += f" request_id={request_id}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + mask_secrets(record.exc_text)
        if record.stack_info:
            line += "\n" + mask_secrets(self.formatStack(record.stack_info))
        return line


def _request_id_of(record: logging.LogRecord) -> str | None:
    """The record's own (gunicorn's access line sets it), the context's, or the one on
    the request Django's `django.request` record carries."""
    value: str | None = getattr(record, "request_id", None) or _request_id.get()
    if value is None and hasattr(record, "request"):
        value = getattr(record.request, REQUEST_ID_ATTR, None)
    return value


def _utc_time(record: logging.LogRecord) -> str:
    global _second
    whole = int(record.created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(record.msecs):03d}Z"
