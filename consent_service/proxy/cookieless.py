"""Cookieless measurement on refusal (`CONSENT_COOKIELESS_ON_REJECT`, README "Cookieless
measurement on refusal").

With the preset on, posthog-js runs with `cookieless_mode: 'on_reject'`: once a visitor
refuses, it sends events under the sentinel distinct_id `$posthog_cookieless`, with no
device or session id and nothing stored (PROTOCOL.md 2.5). PostHog replaces the sentinel
with a hash of a daily salt, the client IP, the host and the user agent (PROTOCOL.md 3.6),
so such an event names nobody: it needs no subject, binds nothing and has nothing to erase.
That holds only for what is rebuilt here, from an allowlist; anything else is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consent_service.proxy.codecs import event_distinct_id
from consent_service.proxy.envelope import PERSON_UPDATES, rebuilt_event

COOKIELESS_ID = "$posthog_cookieless"
# The spool keys entries by subject; these have none (subject ids start at 1).
NO_SUBJECT = 0
# Audience measurement only: event name (top level), URL, host, referrer, screen, timezone,
# library, and what PostHog's hash reads ($raw_user_agent, $host, $timezone, the flag; $ip
# is set by the forwarder from the address we resolved, never taken from the client).
ALLOWED_PROPERTIES = frozenset(
    {
        "token",
        "$current_url",
        "$pathname",
        "$host",
        "$referrer",
        "$referring_domain",
        "$screen_height",
        "$screen_width",
        "$viewport_height",
        "$viewport_width",
        "$timezone",
        "$timezone_offset",
        "$lib",
        "$lib_version",
        "$raw_user_agent",
    }
)
# Events that exist to build or merge persons, and recordings: never without consent.
REFUSED_EVENTS = frozenset(
    {
        "$identify",
        "$create_alias",
        "$merge_dangerously",
        "$groupidentify",
        "$set",
        "$delete_person",
        "$snapshot",
        "$snapshot_items",
    }
)


def cookieless_problem(event: Mapping[str, Any]) -> str | None:
    """Why this event may not go as a cookieless one, or None. Only posthog-js's own
    cookieless events qualify: the sentinel id and `$cookieless_mode: true` (without the
    flag PostHog would take the sentinel as one person shared by every visitor)."""
    properties = event.get("properties")
    if event_distinct_id(event) != COOKIELESS_ID or not isinstance(properties, dict):
        return "no_consent"
    if properties.get("$cookieless_mode") is not True:
        return "no_consent"
    if event.get("event") in REFUSED_EVENTS:
        return "cookieless_identity"
    return None


def cookieless_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as PostHog may see it: fields checked by `event_problem`, allowlisted
    properties, the sentinel in both places PostHog reads, no person processing. Call only
    when `cookieless_problem` is None; rebuilding a rebuilt event gives the same event."""
    properties = event["properties"]
    kept = {key: properties[key] for key in ALLOWED_PROPERTIES if key in properties}
    kept.update(
        {"distinct_id": COOKIELESS_ID, "$cookieless_mode": True, "$process_person_profile": False}
    )
    fresh = rebuilt_event(event, COOKIELESS_ID, erasable=False)
    for key in PERSON_UPDATES:
        fresh.pop(key, None)
    fresh["properties"] = kept
    return fresh
