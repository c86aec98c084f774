"""An event's time, fixed when the proxy received it.

PostHog computes an event's time as its arrival minus the client's clock skew
(`sent_at` − `timestamp`), so an event forwarded minutes later would be shifted by the
delay. The forwarder therefore sends the time PostHog would have computed on arrival at
the proxy, with no `sent_at` and no `offset`: PostHog then keeps the timestamp as it is
(PROTOCOL.md; PostHog's capture `parse_event_timestamp`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

FUTURE_CUTOFF = timedelta(hours=23)  # PostHog replaces later times with its arrival time


def event_time(event: dict[str, Any], *, received_at: datetime, sent_at: str) -> datetime:
    """`event` as rebuilt by the envelope: its timestamp, if any, is RFC 3339. A client's
    offset or clock far enough off to leave the calendar gives the arrival time."""
    try:
        return _event_time(event, received_at, sent_at)
    except OverflowError:
        return received_at


def _event_time(event: dict[str, Any], received_at: datetime, sent_at: str) -> datetime:
    offset = event.get("offset")
    if isinstance(offset, int) and not isinstance(offset, bool):
        return received_at - timedelta(milliseconds=offset)
    stamp = parse_time(event.get("timestamp"))
    if stamp is None:
        return received_at
    client_sent = parse_time(sent_at)
    if client_sent is not None and not _ignores_sent_at(event):
        stamp -= client_sent - received_at  # the client clock's skew
    return received_at if stamp - received_at > FUTURE_CUTOFF else stamp


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ignores_sent_at(event: dict[str, Any]) -> bool:
    properties = event.get("properties")
    return isinstance(properties, dict) and properties.get("$ignore_sent_at") is True
