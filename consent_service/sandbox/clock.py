"""An event's time as PostHog's capture stores it (its `parse_event_timestamp`,
rust/common/types/src/timestamp.rs): the client's `timestamp` corrected for the client's
clock skew by the request's `sent_at`, or `now - offset`, then clamped.

Written from those rules. Where Python's `datetime` differs from Rust's: it cannot hold
year 0, which PostHog keeps, so a result there becomes the epoch (as below year 0), and a
timestamp in year 0 or on a leap second is unparseable here; digits past the microsecond
are dropped. PostHog also reads a few forms that are not RFC 3339 (date only, no zone,
RFC 2822); here they are unparseable too, so the time is `now`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
FUTURE_CUTOFF = timedelta(hours=23)
# RFC 3339 date-time; "t" and " " for "T" and "z" for "Z" are allowed by its section 5.6.
RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]"
    r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<hours>[0-9]{2}):(?P<minutes>[0-9]{2}))"
)
# An hour-only zone ("...+03"), which PostHog rewrites as "+03:00" before parsing.
HOUR_ZONE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?[+-][0-9]{2}"
)


def event_time(*, event: Mapping[str, Any], sent_at: datetime | None, now: datetime) -> datetime:
    """When PostHog says `event` happened, for a request that arrived at `now`."""
    if _properties(event).get("$ignore_sent_at") is True:
        sent_at = None
    timestamp = event.get("timestamp")
    parsed = parse_time(timestamp) if isinstance(timestamp, str) else None
    time = now if parsed is None else parsed
    if parsed is not None and sent_at is not None:
        time = _plus(parsed, now - sent_at)  # the client's clock was `sent_at - now` ahead
    offset = event.get("offset")
    if type(offset) is int:  # a JSON true is no integer
        time = _before(now, milliseconds=offset)
    return now if time - now > FUTURE_CUTOFF else time


def request_sent_at(*, body_sent_at: str | None, query_ms: int | None) -> datetime | None:
    """The batch body's `sent_at` when it parses, else the query's `sent_at`/`_` (ms)."""
    parsed = parse_time(body_sent_at) if body_sent_at is not None else None
    if parsed is not None or query_ms is None:
        return parsed
    try:
        return EPOCH + timedelta(milliseconds=query_ms)
    except OverflowError:
        return None


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 date-time (or one with an hour-only zone) in UTC; None when it is not
    one, or is one Python cannot hold (a leap second, year 0)."""
    if HOUR_ZONE.fullmatch(text):
        text += ":00"
    match = RFC3339.fullmatch(text)
    if match is None:
        return None
    try:
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}")
        return (local - _zone(match)).replace(tzinfo=UTC) + _fraction(match["fraction"])
    except (ValueError, OverflowError):
        return None


def _plus(start: datetime, delta: timedelta) -> datetime:
    """`start + delta`. Past what Python holds, a time far in the future (which the
    future clamp turns into `now`) or the epoch (PostHog's answer below year 0)."""
    try:
        return start + delta
    except OverflowError:
        return FAR_FUTURE if delta > timedelta(0) else EPOCH


def _before(now: datetime, *, milliseconds: int) -> datetime:
    try:
        delta = timedelta(milliseconds=milliseconds)
    except OverflowError:  # an i64 of milliseconds can exceed what a timedelta holds
        return EPOCH if milliseconds > 0 else FAR_FUTURE
    return _plus(now, -delta)


def _zone(match: re.Match[str]) -> timedelta:
    if match["utc"]:
        return timedelta(0)
    hours, minutes = int(match["hours"]), int(match["minutes"])
    if hours > 23 or minutes > 59:
        raise ValueError("no such UTC offset")
    zone = timedelta(hours=hours, minutes=minutes)
    return -zone if match["sign"] == "-" else zone


def _fraction(digits: str | None) -> timedelta:
    return timedelta(microseconds=int((digits or "0")[:6].ljust(6, "0")))


def _properties(event: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = event.get("properties")
    return properties if isinstance(properties, dict) else {}
