"""Capture payloads decoded as PostHog's capture service does (PROTOCOL.md 3.2, 3.3).
What goes upstream is built afresh from them (`envelope.py`), never these bytes."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from consent_service.proxy.bounded_json import JsonLimitError, loads_bounded

GZIP_MAGIC = b"\x1f\x8b\x08"
_STRICT_BASE64 = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")
DISTINCT_ID_MAX = 200

Shape = Literal["batch", "array", "single"]
# posthog-js truncates strings mid surrogate pair; PostHog's parser refuses the lone half
# and with it the whole batch, so it goes out as U+FFFD, as invalid UTF-8 came in.
FFFD_ERRORS = "consent_service.fffd"


def _replace_with_fffd(error: UnicodeError) -> tuple[bytes, int]:
    assert isinstance(error, UnicodeEncodeError)
    # Bytes: the UTF-8 encoder takes only ASCII text from an error handler.
    return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error(FFFD_ERRORS, _replace_with_fffd)


class PayloadError(Exception):
    """The body cannot be read as PostHog would read it."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True)
class Limits:
    max_decoded_bytes: int
    max_events: int
    max_depth: int = 512


@dataclass
class Payload:
    shape: Shape
    events: list[Any]  # as sent: each is checked before anything is forwarded
    envelope: dict[str, Any] = field(default_factory=dict)


def decode_payload(
    *,
    body: bytes,
    query: Mapping[str, str],
    content_type: str,
    content_encoding: str,
    limits: Limits,
) -> Payload:
    raw, hint = _unwrap(body, query, content_type, content_encoding)
    data = _decompress(raw, hint, limits.max_decoded_bytes)
    if _looks_base64(data):  # legacy clients wrapped twice
        data = _b64decode(data)
    return _parse(data, limits)


def event_distinct_id(event: Mapping[str, Any]) -> str | None:
    """As PostHog: top-level distinct_id or $distinct_id, then properties.distinct_id."""
    for key in ("distinct_id", "$distinct_id"):
        if event.get(key) is not None:
            return normalise_id(event[key])
    properties = event.get("properties")
    if isinstance(properties, dict) and properties.get("distinct_id") is not None:
        return normalise_id(properties["distinct_id"])
    return None


def normalise_id(value: Any) -> str | None:
    """The id PostHog stores: JSON text of a non-string (serde's compact form), NUL and
    lone surrogates as U+FFFD (as we forward them), at most 200 characters."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if not text.isascii():
        text = text.encode("utf-8", FFFD_ERRORS).decode("utf-8")
    text = text.replace("\x00", "\ufffd")[:DISTINCT_ID_MAX]
    return text or None


def _unwrap(
    body: bytes, query: Mapping[str, str], content_type: str, content_encoding: str
) -> tuple[bytes, str]:
    """The payload bytes and the compression hint (query, then form field, then header)."""
    hint = query.get("compression", "")
    if "data" in query:
        return query["data"].encode(), hint or content_encoding
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = _parse_form(body)
        data = form.get("data", "").replace(" ", "+")  # '+' arrived as space
        return data.encode(), hint or form.get("compression", "") or content_encoding
    return body, hint or content_encoding


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(400, "invalid_form", "Form body could not be parsed.") from exc
    return {name: values[0] for name, values in fields.items()}


def _decompress(raw: bytes, hint: str, cap: int) -> bytes:
    hint = hint.strip().lower()
    if hint in {"lz64", "lz-string"}:
        raise PayloadError(400, "unsupported_compression", "lz64 bodies are not accepted.")
    if hint in {"base64", "b64"} or (hint == "" and _looks_base64(raw)):
        raw = _b64decode(raw)
    if raw.startswith(GZIP_MAGIC) or hint in {"gzip", "gzip-js"}:
        return gunzip_bounded(raw, cap)
    if len(raw) > cap:
        raise PayloadError(413, "payload_too_large", "Decoded body is too large.")
    return raw


def gunzip_bounded(data: bytes, cap: int) -> bytes:
    """Inflate every gzip member, refusing to produce more than `cap` bytes (zip bombs)."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, cap + 1 - len(out))
        except zlib.error as exc:
            raise PayloadError(400, "invalid_gzip", "Body is not valid gzip.") from exc
        if len(out) > cap:
            raise PayloadError(413, "payload_too_large", "Decompressed body is too large.")
        if not inflater.eof:
            raise PayloadError(400, "truncated_gzip", "Gzip body is truncated.")
        data = inflater.unused_data.lstrip(b"\x00")
    return bytes(out)


def _looks_base64(data: bytes) -> bool:
    stripped = data.strip()
    return len(stripped) >= 4 and len(stripped) % 4 == 0 and bool(_STRICT_BASE64.match(stripped))


def _b64decode(data: bytes) -> bytes:
    try:
        return base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(400, "invalid_base64", "Body is not valid base64.") from exc


def parse_json(data: bytes, limits: Limits) -> Any:
    try:
        return loads_bounded(data, max_depth=limits.max_depth)
    except JsonLimitError as exc:
        raise PayloadError(400, "json_too_complex", str(exc)) from exc
    except ValueError as exc:
        raise PayloadError(400, "invalid_json", "Body is not JSON.") from exc


def _parse(data: bytes, limits: Limits) -> Payload:
    payload = _shape(parse_json(data, limits))
    if not payload.events:
        raise PayloadError(400, "empty_batch", "No events in the body.")
    if len(payload.events) > limits.max_events:
        raise PayloadError(413, "too_many_events", "Too many events in one request.")
    return payload


def _shape(document: Any) -> Payload:
    if isinstance(document, list):
        return Payload("array", document)
    if not isinstance(document, dict):
        raise PayloadError(400, "invalid_payload", "Body must be an event, a list or a batch.")
    if "batch" in document:
        events = document["batch"]
        if not isinstance(events, list):
            raise PayloadError(400, "invalid_payload", "batch must be a list.")
        envelope = {key: value for key, value in document.items() if key != "batch"}
        return Payload("batch", events, envelope)
    return Payload("single", [document])
