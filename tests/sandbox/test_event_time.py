"""The time PostHog stores for an event: its `timestamp` corrected for the client's clock by
the request's `sent_at`, or `now - offset`, then clamped (capture's parse_event_timestamp in
rust/common/types/src/timestamp.rs). `now` is the arrival time, `received_at`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sandbox.payloads import batch_body, event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAY_DAY = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def timed(name: str, **fields: Any) -> dict[str, Any]:
    return {**event(name, "u1"), **fields}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stored_one(server, client, *events: dict[str, Any], url: str = "/batch/", **envelope: Any):
    response = client.post(url, content=batch_body(*events, **envelope))
    assert response.status_code == 200, response.text
    [stored] = server.store.events
    return stored


def test_an_event_without_timestamp_happened_on_arrival(server, client):
    stored = stored_one(server, client, timed("e"))

    assert stored.timestamp == stored.received_at


def test_a_timestamp_without_sent_at_is_kept_as_sent(server, client):
    stored = stored_one(server, client, timed("e", timestamp="2024-05-01T12:00:00.250Z"))

    assert stored.timestamp == MAY_DAY + timedelta(milliseconds=250)


def test_the_batch_sent_at_corrects_the_clients_clock(server, client):
    client_now = datetime.now(UTC) + timedelta(hours=1)  # the client's clock is an hour fast
    happened = client_now - timedelta(minutes=5)

    stored = stored_one(
        server, client, timed("e", timestamp=iso(happened)), sent_at=iso(client_now)
    )

    # timestamp - (sent_at - now): five minutes before it arrived, by the server's clock
    assert stored.timestamp == stored.received_at - timedelta(minutes=5)


def test_ignore_sent_at_keeps_the_timestamp_as_sent(server, client):
    sent = {**event("e", "u1", **{"$ignore_sent_at": True}), "timestamp": "2024-05-01T12:00:00Z"}

    stored = stored_one(server, client, sent, sent_at=iso(datetime.now(UTC) + timedelta(hours=1)))

    assert stored.timestamp == MAY_DAY


@pytest.mark.parametrize("parameter", ["_", "sent_at"])
def test_the_query_sent_at_is_read_in_milliseconds(server, client, parameter):
    client_now = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    ms = int(client_now.timestamp() * 1000)

    stored = stored_one(
        server, client, timed("e", timestamp="2024-05-01T12:00:00Z"), url=f"/e/?{parameter}={ms}"
    )

    assert stored.timestamp == stored.received_at - timedelta(hours=1)


def test_the_body_sent_at_wins_over_the_query(server, client):
    ms = int(datetime(2024, 5, 1, 14, 0, tzinfo=UTC).timestamp() * 1000)
    sent = timed("e", timestamp="2024-05-01T12:00:00Z")

    stored = stored_one(server, client, sent, url=f"/batch/?_={ms}", sent_at="2024-05-01T13:00:00Z")

    assert stored.timestamp == stored.received_at - timedelta(hours=1)


def test_an_unparseable_body_sent_at_falls_back_to_the_query(server, client):
    ms = int(datetime(2024, 5, 1, 14, 0, tzinfo=UTC).timestamp() * 1000)
    sent = timed("e", timestamp="2024-05-01T12:00:00Z")

    stored = stored_one(server, client, sent, url=f"/batch/?_={ms}", sent_at="yesterday")

    assert stored.timestamp == stored.received_at - timedelta(hours=2)


def test_an_offset_overrides_the_timestamp(server, client):
    sent = timed("e", timestamp="2024-05-01T12:00:00Z", offset=1500)

    stored = stored_one(server, client, sent, sent_at=iso(datetime.now(UTC)))

    assert stored.timestamp == stored.received_at - timedelta(milliseconds=1500)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", MAY_DAY),
        ("2024-05-01t12:00:00z", MAY_DAY),
        ("2024-05-01 12:00:00+00:00", MAY_DAY),
        ("2024-05-01T15:00:00+03", MAY_DAY),  # an hour-only zone becomes +03:00
        ("2024-05-01T09:30:00.5-02:30", MAY_DAY + timedelta(milliseconds=500)),
        ("2024-05-01T12:00:00.123456789Z", MAY_DAY + timedelta(microseconds=123456)),
    ],
)
def test_rfc3339_timestamps_are_read_in_utc(server, client, text, expected):
    stored = stored_one(server, client, timed("e", timestamp=text))

    assert stored.timestamp == expected


@pytest.mark.parametrize("text", ["not a time", "", "2024-02-30T12:00:00Z", "2024-13-01T12:00:00Z"])
def test_an_unparseable_timestamp_means_now(server, client, text):
    stored = stored_one(server, client, timed("e", timestamp=text), sent_at=iso(MAY_DAY))

    assert stored.timestamp == stored.received_at


def test_up_to_23_hours_ahead_is_kept_and_beyond_is_now(server, client):
    soon = datetime.now(UTC) + timedelta(hours=22, minutes=59)
    later = datetime.now(UTC) + timedelta(hours=23, minutes=1)
    body = batch_body(timed("soon", timestamp=iso(soon)), timed("later", timestamp=iso(later)))

    assert client.post("/batch/", content=body).status_code == 200

    kept, clamped = server.store.events
    assert kept.timestamp == soon
    assert clamped.timestamp == clamped.received_at


@pytest.mark.parametrize("offset", [-24 * 3600 * 1000, -(2**63)])
def test_a_negative_offset_into_the_future_is_now(server, client, offset):
    stored = stored_one(server, client, timed("e", offset=offset))

    assert stored.timestamp == stored.received_at


@pytest.mark.parametrize(
    ("fields", "sent_at"),
    [
        ({"offset": 300_000 * 365 * 24 * 3600 * 1000}, None),  # 300,000 years ago
        ({"offset": 2**63 - 1}, None),  # the largest offset an event may carry
        ({"timestamp": "2024-05-01T12:00:00Z"}, "9999-01-01T00:00:00Z"),  # ~8,000 years fast
    ],
    ids=["huge-offset", "largest-offset", "huge-skew"],
)
def test_a_time_before_year_0_is_the_epoch(server, client, fields, sent_at):
    envelope = {} if sent_at is None else {"sent_at": sent_at}

    stored = stored_one(server, client, timed("e", **fields), **envelope)

    assert stored.timestamp == EPOCH


def test_a_correction_past_year_9999_is_now(server, client):
    client_behind = iso(datetime.now(UTC) - timedelta(days=2))

    stored = stored_one(
        server, client, timed("e", timestamp="9999-12-31T23:00:00Z"), sent_at=client_behind
    )

    assert stored.timestamp == stored.received_at


def test_each_event_of_a_batch_gets_its_own_time(server, client):
    body = batch_body(
        timed("a", timestamp="2024-05-01T12:00:00Z"), timed("b", offset=60_000), timed("c")
    )
    client.post("/batch/", content=body)

    first, second, third = server.store.events
    assert first.timestamp == MAY_DAY
    assert second.timestamp == second.received_at - timedelta(minutes=1)
    assert third.timestamp == third.received_at


def test_recordings_read_the_query_sent_at(server, client):
    ms = int(datetime(2024, 5, 1, 13, 0, tzinfo=UTC).timestamp() * 1000)
    properties = {"$session_id": "s1", "$snapshot_data": []}
    snapshot = {**event("$snapshot", "u1", **properties), "timestamp": "2024-05-01T12:00:00Z"}

    assert client.post(f"/s/?_={ms}", json=[snapshot]).status_code == 200

    [stored] = server.store.events
    assert stored.timestamp == stored.received_at - timedelta(hours=1)


def test_the_inspection_api_shows_the_stored_time(server, client):
    client.post("/batch/", content=batch_body(timed("e", timestamp="2024-05-01T12:00:00Z")))

    [stored] = client.get("/_sandbox/events.json").json()

    assert datetime.fromisoformat(stored["timestamp"]) == MAY_DAY
