"""Cookieless server hash mode, as PostHog's ingestion applies it (PROTOCOL 3.6)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.payloads import batch_body, event

SENTINEL = "$posthog_cookieless"
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0"


def cookieless(name: str = "$pageview", **properties: Any) -> dict[str, Any]:
    defaults = {
        "$cookieless_mode": True,
        "$host": "www.example.test",
        "$raw_user_agent": UA,
        "$process_person_profile": False,  # posthog-js's, and what the proxy forces
    }
    return event(name, SENTINEL, **{**defaults, **properties})


def ids(server) -> list[str | None]:
    return [stored.distinct_id for stored in server.store.events]


def test_the_sentinel_becomes_one_hashed_id_per_visitor_site_and_day(server, capture):
    capture(
        cookieless(**{"$ip": "203.0.113.1"}),
        cookieless(**{"$ip": "203.0.113.1", "$host": "shop.example.test"}),  # same site
        cookieless(**{"$ip": "203.0.113.2"}),
        cookieless(**{"$ip": "203.0.113.1", "$raw_user_agent": UA + " other"}),
    )

    first, same_site, other_ip, other_agent = ids(server)
    assert first is not None and first.startswith(SENTINEL + "_")
    assert same_site == first
    assert len({first, other_ip, other_agent}) == 3
    assert server.persons.all() == []  # no person: nothing to merge, nothing to erase


def test_the_request_ip_is_hashed_when_the_event_has_no_ip_property(server, client):
    headers = {"X-Forwarded-For": "198.51.100.9"}

    client.post("/batch/", content=batch_body(cookieless()), headers=headers)
    client.post("/batch/", content=batch_body(cookieless(**{"$ip": "198.51.100.9"})))

    [by_header, by_property] = ids(server)
    assert by_header == by_property


@pytest.mark.parametrize(
    "properties",
    [
        {"$ip": None},  # no IP: nothing to hash
        {"$ip": "203.0.113.1", "$host": None},
        {"$ip": "203.0.113.1", "$raw_user_agent": None},
    ],
)
def test_a_cookieless_event_that_cannot_be_hashed_is_dropped(server, capture, properties):
    capture(cookieless(**properties))

    assert server.store.events == []


@pytest.mark.parametrize("name", ["$identify", "$create_alias", "$merge_dangerously"])
def test_identity_events_are_dropped_in_cookieless_mode(server, capture, name):
    capture(cookieless(name, **{"$ip": "203.0.113.1"}))

    assert server.store.events == []


def test_with_the_project_setting_off_cookieless_events_are_dropped(server, client, capture):
    response = client.post("/_sandbox/cookieless", json={"enabled": False})
    assert response.json() == {"enabled": False}

    capture(cookieless(**{"$ip": "203.0.113.1"}), event("ordinary", "u1"))

    assert ids(server) == ["u1"]
    server.reset()  # the setting goes back on with the rest
    assert client.get("/_sandbox/cookieless").json() == {"enabled": True}


def test_the_setting_takes_only_a_boolean(client):
    response = client.post("/_sandbox/cookieless", json={"enabled": "no"})

    assert response.status_code == 400
