"""The token and distinct_id of an event, as PostHog's capture extracts them.

`RawEvent::extract_token` and `extract_distinct_id` (rust/common/types/src/event.rs),
`extract_and_verify_token` (capture utils.rs) and `validate_token` (capture token.rs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from consent_service.sandbox.wire import CaptureError

TOKEN_KEYS = ("token", "$token", "api_key")
DISTINCT_ID_MAX_CHARS = 200
TOKEN_MAX_BYTES = 64
I64_MIN, U64_END = -(2**63), 2**64  # serde_json keeps integers in this range exact
# Rust's char::is_whitespace (Unicode White_Space), which str.isspace() does not match
# exactly (it also takes U+001C..U+001F).
RUST_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
RUST_WHITESPACE += "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def extract_token(event: Mapping[str, Any]) -> str | None:
    """The root token (any alias, even ""), else `properties.token` when it is a string."""
    for key in TOKEN_KEYS:
        if event.get(key) is not None:
            return str(event[key])
    properties = event.get("properties")
    token = properties.get("token") if isinstance(properties, dict) else None
    return token if isinstance(token, str) else None


def request_token(events: Sequence[Mapping[str, Any]], batch_token: str | None) -> str:
    """A batch's own token wins; else the events' tokens, which must agree."""
    if batch_token is not None:
        return validate_token(batch_token)
    found = {token for token in map(extract_token, events) if token is not None}
    if len(found) > 1:
        raise CaptureError(
            400, "unroutable_events", "batch submitted with inconsistent api_key values"
        )
    if not found:
        raise CaptureError(401, "ingest_key_required", "event submitted without an api_key")
    return validate_token(found.pop())


def validate_token(token: str) -> str:
    """The token with surrounding whitespace trimmed, or 403 when it cannot be a project's."""
    trimmed = token.strip(RUST_WHITESPACE)
    problem = _token_problem(trimmed)
    if problem:
        raise CaptureError(403, "ingest_key_unknown", f"API key is not valid: {problem}")
    return trimmed


def _token_problem(token: str) -> str:
    if not token:
        return "empty"
    if len(token.encode()) > TOKEN_MAX_BYTES:
        return "too_long"
    if not token.isascii():
        return "not_ascii"
    if token.startswith("phx_"):
        return "personal_api_key"
    return "null_byte" if "\x00" in token else ""


def extract_distinct_id(event: Mapping[str, Any]) -> str | None:
    """Root `distinct_id` (or its alias `$distinct_id`), else `properties.distinct_id` —
    only when the root is absent or null: a root "" does not fall back. Non-strings become
    their JSON text, NUL becomes U+FFFD, blank is None, and the id is cut to 200 chars."""
    value = event.get("distinct_id", event.get("$distinct_id"))
    if value is None:
        properties = event.get("properties")
        value = properties.get("distinct_id") if isinstance(properties, dict) else None
    if value is None:
        return None
    text = (value if isinstance(value, str) else json_text(value)).replace("\x00", "\ufffd")
    if not text.strip(RUST_WHITESPACE):
        return None
    return text[:DISTINCT_ID_MAX_CHARS]


def json_text(value: Any) -> str:
    """serde_json's `Value::to_string`: compact, object keys sorted (no `preserve_order`),
    integers beyond 64 bits held as f64, floats printed the way Rust's ryu prints them."""
    if isinstance(value, dict):
        items = (f"{json_text(key)}:{json_text(value[key])}" for key in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(json_text, value)) + "]"
    if type(value) is int and not I64_MIN <= value < U64_END:
        value = float(value)
    if isinstance(value, float):
        return ryu_text(value)
    return json.dumps(value, ensure_ascii=False)


def ryu_text(number: float) -> str:
    """Shortest round-trip digits (as repr), laid out as ryu does: `1e16`, `1e-7`, `0.00001`,
    `1000000000000000.0`, where Python writes `1e+16`, `1e-07`, `1e-05`, `1000000000000000.0`."""
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    digits_tuple, exponent = _shortest_digits(abs(number))
    digits = "".join(map(str, digits_tuple))
    point = len(digits) + exponent  # where the decimal point falls in `digits`
    if exponent >= 0 and point <= 16:
        return f"{sign}{digits}{'0' * exponent}.0"
    if 0 < point <= 16:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{mantissa}e{point - 1}"


def _shortest_digits(number: float) -> tuple[tuple[int, ...], int]:
    if number == 0:
        return (0,), 0
    parts = Decimal(repr(number)).as_tuple()
    digits, exponent = parts.digits, int(parts.exponent)
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return digits, exponent
