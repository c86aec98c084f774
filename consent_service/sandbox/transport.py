"""From HTTP request to JSON text, as PostHog's capture does it (PROTOCOL 3.2).

Modelled on `extract_payload_bytes` (rust/capture/src/payload/common.rs), `decompress_payload`
(payload/decompression.rs), `EventQuery`/`EventFormData` (payload/types.rs) and the helpers in
`utils.rs`; written apart from the proxy's decoder, so that the sandbox can catch its mistakes.
"""

from __future__ import annotations

import binascii
import re
import zlib
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl

from consent_service.sandbox.wire import CaptureError, decoding_error, too_big

FORM_MIME_TYPE = "application/x-www-form-urlencoded"
GZIP_MAGIC = b"\x1f\x8b\x08"
PREFIX_CHECKED = 128  # utils.rs MAX_CHARS_TO_CHECK: only this much is sniffed
FORM_MARKERS = (b"data=", b"_=", b"ip=", b"compression=")
LEGACY_ROUTES = {"/e/", "/capture/", "/engage/", "/track/"}  # path_is_legacy_endpoint
INTEGER = re.compile(r"^[+-]?[0-9]+$")  # what Rust's str::parse::<i64>() takes
I32, I64 = 2**31, 2**63
B64_STRICT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
B64_LOOSE = B64_STRICT | {ord(" ")}


class Compression(Enum):
    UNSUPPORTED = "unsupported"
    GZIP = "gzip"
    LZ64 = "lz64"
    BASE64 = "base64"


HINTS = {
    "gzip": Compression.GZIP,
    "gzip-js": Compression.GZIP,
    "lz64": Compression.LZ64,
    "lz-string": Compression.LZ64,
    "base64": Compression.BASE64,
    "b64": Compression.BASE64,
}


@dataclass(frozen=True)
class EventQuery:
    data: str | None = None
    compression: Compression | None = None
    sent_at: int | None = None  # `_` or `sent_at`, milliseconds
    beacon: bool = False


@dataclass(frozen=True)
class Form:
    data: str | None = None
    compression: Compression | None = None


def event_query(query: str) -> EventQuery:
    """axum's `Query<EventQuery>`: a repeated field (aliases included) or a value that does
    not fit its type refuses the whole request; unknown parameters (`ip`, `ver`) are ignored."""
    try:
        fields = _struct_fields(query, {"data", "compression", "sent_at", "_", "beacon"})
    except ValueError as exc:
        raise CaptureError(400, "invalid_query", str(exc)) from exc
    beacon = _integer(fields.get("beacon"), I32)
    return EventQuery(
        data=fields.get("data"),
        compression=compression_hint(fields.get("compression")),
        sent_at=_integer(fields.get("sent_at", fields.get("_")), I64),
        beacon=beacon == 1,
    )


def extract_payload(
    *, body: bytes, query: EventQuery, content_type: str, content_encoding: str | None
) -> tuple[bytes, Compression]:
    """The payload bytes and the compression hint (query, then form, then Content-Encoding)."""
    raw = query.data.encode() if query.data else body
    if not raw:
        raise CaptureError(400, "empty_payload", "request missing data payload")
    if not _looks_like_form(raw) and _looks_like_base64(raw, B64_STRICT):
        raw = _base64_or_none(raw) or raw  # whole-body base64, kept as is when it fails
    # An exact match: "application/x-www-form-urlencoded; charset=UTF-8" is not a form here.
    form = _form(raw) if content_type == FORM_MIME_TYPE else Form()
    compression = _known(query.compression) or _known(form.compression)
    compression = compression or _header_hint(content_encoding)
    return (raw if form.data is None else form.data.encode()), compression


def decompress(data: bytes, compression: Compression, *, limit: int, route: str) -> str:
    """The JSON text. Gzip when hinted or sniffed by its magic bytes; then, on the legacy
    routes only, one more base64 pass if the text still looks like base64."""
    if compression is Compression.GZIP or data.startswith(GZIP_MAGIC):
        text = _utf8(gunzip_first_member(data, limit), "invalid gzip data")
    elif compression is Compression.LZ64:
        # PostHog inflates lz-string; the sandbox does not, and says so.
        raise CaptureError(400, "unsupported_compression", "the sandbox does not read lz64")
    else:
        text = _utf8(data, "invalid UTF8 in request payload")
        if len(data) > limit:
            raise too_big(f"Uncompressed payload size limit {limit} exceeded")
    if route in LEGACY_ROUTES:
        text = _legacy_base64(text, limit)
    return text


def gunzip_first_member(data: bytes, limit: int) -> bytes:
    """flate2's `GzDecoder` reads ONE gzip member: whatever follows it is never read."""
    inflater = zlib.decompressobj(wbits=31)
    out = bytearray()
    pending = data
    while not inflater.eof:
        try:
            chunk = inflater.decompress(pending, limit + 1 - len(out))
        except zlib.error as exc:
            raise decoding_error("invalid GZIP data") from exc
        out += chunk
        if len(out) > limit:
            raise too_big(f"Decompressed payload would exceed {limit} bytes")
        pending = inflater.unconsumed_tail
        if not chunk and not pending:
            raise decoding_error("invalid GZIP data")  # the stream ends early
    return bytes(out)


def _struct_fields(encoded: str, names: set[str]) -> dict[str, str]:
    """serde_urlencoded into a struct: unknown names are ignored, a repeated one is an error."""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        field = "sent_at" if name == "_" else name
        if name not in names:
            continue
        if field in fields:
            raise ValueError(f"duplicate field `{field}`")
        fields[field] = value
    return fields


def _integer(value: str | None, bound: int) -> int | None:
    if value is None:
        return None
    if not INTEGER.match(value) or not -bound <= int(value) < bound:
        raise CaptureError(400, "invalid_query", f"invalid number: {value!r}")
    return int(value)


def compression_hint(value: str | None) -> Compression | None:
    """A `compression` parameter as PostHog's `Compression` deserializer reads it."""
    return None if value is None else HINTS.get(value.lower(), Compression.UNSUPPORTED)


def _known(compression: Compression | None) -> Compression | None:
    return None if compression is Compression.UNSUPPORTED else compression


def _header_hint(content_encoding: str | None) -> Compression:
    # Compared as sent, not lower-cased (utils.rs `extract_compression`).
    return HINTS.get(content_encoding or "", Compression.UNSUPPORTED)


def _looks_like_form(payload: bytes) -> bool:
    prefix = payload[:PREFIX_CHECKED]
    return any(prefix.startswith(m) or b"&" + m in prefix for m in FORM_MARKERS)


def _looks_like_base64(payload: bytes, alphabet: frozenset[int]) -> bool:
    """utils.rs `is_likely_base64`: the first 128 bytes and the length, nothing more."""
    return bool(payload) and len(payload) % 4 == 0 and set(payload[:PREFIX_CHECKED]) <= alphabet


def _base64_or_none(data: bytes) -> bytes | None:
    """The STANDARD engine of the base64 crate: padded, canonical, nothing else allowed."""
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        return None
    return decoded if binascii.b2a_base64(decoded, newline=False) == data else None


def _form(payload: bytes) -> Form:
    if not _looks_like_form(payload):
        raise decoding_error("expected form data in POST request payload")
    try:
        fields = _struct_fields(payload.decode("utf-8", "replace"), {"data", "compression"})
    except ValueError as exc:
        raise decoding_error("invalid urlencoded form data") from exc
    data = fields.get("data")
    if data is not None and _looks_like_base64(data.encode(), B64_LOOSE):
        data = data.replace(" ", "+")  # '+' in base64 arrived as a space
    return Form(data, compression_hint(fields.get("compression")))


def _utf8(data: bytes, detail: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decoding_error(detail) from exc


def _legacy_base64(text: str, limit: int) -> str:
    encoded = text.encode()
    if not _looks_like_base64(encoded, B64_STRICT):
        return text
    decoded = _base64_or_none(encoded)
    if decoded is None:
        return text
    try:
        unwrapped = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return text
    if len(decoded) > limit:
        raise too_big(f"payload size limit {limit} exceeded after base64 unwrap")
    return unwrapped
