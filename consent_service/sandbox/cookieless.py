"""PostHog's cookieless server hash mode, as ingestion applies it (PROTOCOL 3.6; PostHog's
cookieless manager, `rust/common/cookieless`).

An event with `$cookieless_mode: true` is dropped unless the project turned the mode on.
With it on, the sentinel distinct_id becomes a hash of a per-day salt, the team, the IP the
event records, the root domain of its `$host` and its `$raw_user_agent`; without any of
those three it cannot be hashed and is dropped. Identity events are dropped (stateless
mode). The sandbox keys BLAKE2b with the salt where PostHog uses SipHash, and takes the
last two labels of the host where PostHog reads the public-suffix list: the same shape of
answer (one id per visitor, site and day), not the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consent_service.sandbox.store import CapturedEvent

SENTINEL = "$posthog_cookieless"
FLAG = "$cookieless_mode"
TEAM_ID = 1
DROPPED_EVENTS = frozenset({"$identify", "$create_alias", "$merge_dangerously"})


class DailySalts:
    """One random 128-bit salt per calendar day, made on first use (PostHog keeps them in
    Redis and deletes them after their day)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._salts: dict[str, bytes] = {}

    def for_day(self, day: str) -> bytes:
        with self._lock:
            return self._salts.setdefault(day, secrets.token_bytes(16))


def cookieless_ingest(
    events: Iterable[CapturedEvent], *, enabled: bool, salts: DailySalts
) -> list[CapturedEvent]:
    """The events ingestion keeps, cookieless ones under their hashed distinct_id."""
    kept = []
    for captured in events:
        properties = captured.event.get("properties")
        if (
            captured.is_recording
            or not isinstance(properties, dict)
            or properties.get(FLAG) is not True
        ):
            kept.append(captured)
        elif enabled and captured.event.get("event") not in DROPPED_EVENTS:
            hashed = _hashed(captured, properties, salts)
            if hashed is not None:
                kept.append(hashed)
    return kept


def _hashed(
    captured: CapturedEvent, properties: dict[str, object], salts: DailySalts
) -> CapturedEvent | None:
    host, agent = properties.get("$host"), properties.get("$raw_user_agent")
    if not captured.ip or not isinstance(host, str) or not host or not isinstance(agent, str):
        return None
    if not agent or captured.distinct_id != SENTINEL:
        return None
    day = _day(captured.timestamp, properties.get("$timezone"))
    parts = [str(TEAM_ID), captured.ip, _root_domain(host), agent]
    digest = hashlib.blake2b(
        "\x00".join(parts).encode(), key=salts.for_day(day), digest_size=16
    ).digest()
    # The event stays as capture decoded it; the id it is stored and counted under changes.
    distinct_id = f"{SENTINEL}_{base64.b64encode(digest).decode()}"
    return replace(captured, distinct_id=distinct_id)


def _day(timestamp: datetime, timezone: object) -> str:
    """The event's calendar day in its own timezone, else UTC."""
    try:
        zone = ZoneInfo(timezone) if isinstance(timezone, str) and timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return timestamp.astimezone(zone).strftime("%Y-%m-%d")


def _root_domain(host: str) -> str:
    name = host.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    labels = [label for label in name.split(".") if label]
    return ".".join(labels[-2:]) if len(labels) > 2 else name
