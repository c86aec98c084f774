"""The proxy answers from the spool and the forwarder delivers (RELIABILITY.md S01-S06),
against the PostHog-faithful sandbox on loopback."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.services import erasure_claim
from consent_service.ledger.models import SubjectIdentifier
from consent_service.spool.models import DeadLetter, SpooledRequest
from consent_service.spool.store import Entry, spool_append, spool_counts, spool_fullness_forget
from tests.conftest import (
    TOKEN,
    Visitor,
    anonymous_id,
    delivered,
    forward_spool,
    redis_spool,
)

pytestmark = pytest.mark.django_db
NO_WAIT = override_settings(CONSENT_FORWARDER_BACKOFF_CAP_SECONDS=0)


@pytest.fixture(autouse=True, params=["database", "redis"])
def backend(request) -> Iterator[str]:
    """Every test here runs against each spool backend (Redis: the machine's own)."""
    if request.param == "database":
        yield "database"
        return
    with redis_spool():
        yield "redis"


def waiting() -> int:
    return spool_counts()[0]


def pageview(distinct_id: str, **extra: Any) -> dict[str, Any]:
    return {"event": "$pageview", "properties": {"distinct_id": distinct_id}, **extra}


def send(visitor: Visitor, *events: dict[str, Any], **headers: str) -> Any:
    body = json.dumps({"api_key": TOKEN, "batch": list(events)})
    return visitor.client.post("/ph/e/", body, content_type="text/plain", headers=headers)


def consented() -> Visitor:
    visitor = Visitor()
    assert visitor.decide({"analytics": True}).status_code == 201
    return visitor


def test_the_answer_comes_before_posthog_sees_anything(sandbox):
    visitor = consented()

    response = send(visitor, pageview(anonymous_id("a")))

    assert response.json() == {"status": 1}
    assert sandbox.store.requests == []
    assert waiting() == 1
    assert [e.distinct_id for e in delivered(sandbox)] == [anonymous_id("a")]
    assert waiting() == 0


@NO_WAIT
def test_acknowledged_events_arrive_after_posthog_answered_503_for_a_while(sandbox):
    visitor = consented()
    for n in range(3):
        assert (
            send(
                visitor,
                pageview(anonymous_id("a"), uuid=f"0190{n:04d}-0000-7000-8000-000000000000"),
            ).status_code
            == 200
        )
    sandbox.faults.add(503, times=4)

    rounds = [forward_spool() for _ in range(5)]

    assert [r.retried for r in rounds[:4]] == [3, 3, 3, 3]  # kept every time
    assert rounds[4].delivered == 3
    assert len(sandbox.store.events) == 3
    assert waiting() == 0


def test_a_retry_waits_at_least_what_retry_after_asks(sandbox, backend):
    visitor = consented()
    send(visitor, pageview(anonymous_id("a")))
    sandbox.faults.add(429, times=1, retry_after=120)

    assert forward_spool().retried == 1

    assert forward_spool().requests == 0  # not due yet
    assert waiting() == 1
    if backend == "database":
        row = SpooledRequest.objects.get()
        assert row.next_attempt_at - time.time() > 110
        assert row.attempts == 1 and "429" in row.last_error


def test_a_withdrawal_between_acknowledgement_and_delivery_sends_nothing(sandbox):
    visitor = consented()
    send(visitor, pageview(anonymous_id("a")))

    assert visitor.withdraw().status_code == 201

    assert waiting() == 0  # purged with the withdrawal
    assert delivered(sandbox) == []


def test_events_judged_before_a_withdrawal_and_stored_after_it_are_dropped_at_delivery(sandbox):
    """A request the gate judged just before the withdrawal committed spools after it."""
    visitor = consented()
    send(visitor, pageview(anonymous_id("a")))
    forward_spool()
    judged = json.dumps(
        [
            {
                "event": "late",
                "distinct_id": anonymous_id("a"),
                "properties": {"distinct_id": anonymous_id("a")},
                "uuid": "01900000-0000-7000-8000-00000000000a",
            }
        ]
    )
    visitor.withdraw()
    subject_id = SubjectIdentifier.objects.get(value=anonymous_id("a")).subject_id
    spool_append(entries=[Entry(subject_id, judged, 1)], received_at=time.time(), sent_at="", ip="")

    result = forward_spool()

    assert (result.delivered, dict(result.dropped)) == (0, {"id_refused": 1})
    assert [e.event["event"] for e in sandbox.store.events] == ["$pageview"]


@override_settings(CONSENT_SPOOL_MAX_REQUESTS=2)
def test_a_full_spool_answers_503_and_takes_events_again_once_drained(sandbox):
    visitor = consented()
    assert send(visitor, pageview(anonymous_id("a"))).status_code == 200
    assert send(visitor, pageview(anonymous_id("a"))).status_code == 200
    spool_fullness_forget()

    full = send(visitor, pageview(anonymous_id("a")))

    assert full.status_code == 503
    assert full.json()["code"] == "spool_full"
    assert full["Retry-After"] == "60"
    forward_spool()
    spool_fullness_forget()
    assert send(visitor, pageview(anonymous_id("a"))).status_code == 200
    assert len(delivered(sandbox)) == 3


@override_settings(CONSENT_SPOOL_MAX_AGE_SECONDS=60)
def test_a_spool_whose_oldest_request_waits_too_long_is_full(sandbox):
    visitor = consented()
    old = Entry(subject_id=1, events="[]", event_count=0)
    spool_append(entries=[old], received_at=time.time() - 120, sent_at="", ip="")
    spool_fullness_forget()

    assert send(visitor, pageview(anonymous_id("a"))).status_code == 503


def test_the_erasure_worker_waits_until_the_spool_holds_nothing_older_than_the_request(sandbox):
    leaving, staying = consented(), consented()
    send(leaving, pageview(anonymous_id("leaving")))
    forward_spool()
    send(staying, pageview(anonymous_id("staying")))  # acknowledged, not yet delivered
    leaving.withdraw()
    ErasureRequest.objects.update(next_attempt_at=ErasureRequest.objects.get().created_at)

    assert erasure_claim(worker="w") == []

    forward_spool()
    assert [r.reason for r in erasure_claim(worker="w")] == ["withdrawal"]


def test_dead_letters_of_an_erased_subject_are_purged(sandbox):
    visitor = consented()
    send(visitor, pageview(anonymous_id("a")))
    forward_spool()
    subject_id = SubjectIdentifier.objects.get(value=anonymous_id("a")).subject_id
    DeadLetter.objects.create(
        received_at=0, subject_id=subject_id, event="{}", status_code=400, reason="x"
    )

    visitor.withdraw()

    assert DeadLetter.objects.count() == 0


@override_settings(CONSENT_TRUSTED_PROXIES=["127.0.0.0/8"])
def test_each_event_of_a_batch_that_mixes_visitors_carries_its_own_ip(sandbox):
    ada, bob = consented(), consented()
    send(ada, pageview(anonymous_id("ada")), **{"X-Forwarded-For": "203.0.113.1"})
    send(bob, pageview(anonymous_id("bob")), **{"X-Forwarded-For": "198.51.100.2"})

    events = delivered(sandbox)

    assert len([r for r in sandbox.store.requests if r.path == "/batch/"]) == 1  # one batch
    ips = {e.distinct_id: e.ip for e in events}  # what PostHog records
    assert ips == {anonymous_id("ada"): "203.0.113.1", anonymous_id("bob"): "198.51.100.2"}


def test_a_visitor_clock_an_hour_fast_gives_posthog_the_right_time_after_a_delay(
    sandbox, time_machine
):
    received = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    time_machine.move_to(received, tick=False)
    visitor = consented()
    fast = received + timedelta(hours=1)  # what the visitor's clock says
    happened = fast - timedelta(seconds=30)  # 30 s before it sent the batch
    body = json.dumps(
        {
            "api_key": TOKEN,
            "sent_at": iso(fast),
            "batch": [pageview(anonymous_id("a"), timestamp=iso(happened))],
        }
    )
    visitor.client.post("/ph/e/", body, content_type="text/plain")

    time_machine.move_to(received + timedelta(minutes=5), tick=False)  # delivered late
    [event] = delivered(sandbox)

    assert event.received_at == received + timedelta(minutes=5)
    assert event.timestamp == received - timedelta(seconds=30)  # as PostHog computes it


def test_an_offset_is_counted_from_when_the_proxy_received_the_event(sandbox, time_machine):
    received = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    time_machine.move_to(received, tick=False)
    visitor = consented()
    send(visitor, pageview(anonymous_id("a"), offset=2500))

    time_machine.move_to(received + timedelta(minutes=5), tick=False)
    [event] = delivered(sandbox)

    assert event.timestamp == received - timedelta(milliseconds=2500)
    assert "offset" not in event.event


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@NO_WAIT
def test_an_event_posthog_refuses_is_isolated_dead_lettered_and_the_rest_delivered(sandbox):
    visitor = consented()
    good = [
        pageview(anonymous_id("a"), uuid=f"01900000-0000-7000-8000-00000000000{n}")
        for n in range(6)
    ]
    poison = {**pageview(anonymous_id("a")), "event": "poison"}
    send(visitor, *good[:3], poison, *good[3:])
    send(visitor, pageview(anonymous_id("a")))
    sandbox.faults.poison("poison")

    result = forward_spool()

    assert (result.delivered, result.dead_lettered, result.retried) == (7, 1, 0)
    assert sorted(e.event["event"] for e in sandbox.store.events) == ["$pageview"] * 7
    [dead] = DeadLetter.objects.all()
    assert json.loads(dead.event)["event"] == "poison"
    assert dead.status_code == 400 and "invalid_event" in dead.reason
    assert waiting() == 0
    refused = [r for r in sandbox.store.requests if r.status == 400]
    assert 1 < len(refused) <= 4  # split in halves down to the one event: log2 of the batch


@pytest.mark.parametrize(
    ("extra", "sent_at"),
    [
        ({"offset": 10**18}, None),  # milliseconds beyond any calendar
        ({"offset": -(10**18)}, None),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "0001-01-01T00:00:00Z"),  # skew off the calendar
        ({"timestamp": "0001-01-01T00:00:00Z"}, "9999-12-31T23:59:59Z"),
    ],
    ids=["offset far ahead", "offset far behind", "clock far behind", "clock far ahead"],
)
def test_a_time_off_the_calendar_is_delivered_at_arrival_time(
    sandbox, time_machine, extra, sent_at
):
    received = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    time_machine.move_to(received, tick=False)
    visitor = consented()
    envelope: dict[str, Any] = {"api_key": TOKEN, "batch": [pageview(anonymous_id("a"), **extra)]}
    if sent_at:
        envelope["sent_at"] = sent_at
    visitor.client.post("/ph/e/", json.dumps(envelope), content_type="text/plain")

    [event] = delivered(sandbox)

    assert event.timestamp == received
    assert waiting() == 0


def test_a_client_supplied_ip_never_reaches_posthog(sandbox):
    visitor = consented()
    send(visitor, pageview(anonymous_id("a")))  # binds the id to the visitor's subject
    forward_spool()
    subject_id = SubjectIdentifier.objects.get(value=anonymous_id("a")).subject_id
    claimed = {
        "event": "e",
        "distinct_id": anonymous_id("a"),
        "uuid": str(uuid.uuid4()),
        "properties": {"distinct_id": anonymous_id("a"), "$ip": "6.6.6.6"},
    }
    entry = Entry(subject_id, json.dumps([claimed]), 1)
    spool_append(entries=[entry], received_at=time.time(), sent_at="", ip="")  # no IP known

    [event] = delivered(sandbox)[1:]

    assert "$ip" not in event.event["properties"]
    assert event.ip == "127.0.0.1"  # the forwarder's own address, as PostHog reads it


@NO_WAIT
@pytest.mark.parametrize("retry_after", ["nan", "inf"])
def test_a_retry_after_that_would_never_come_due_is_not_believed(sandbox, retry_after):
    visitor = consented()
    send(visitor, pageview(anonymous_id("a")))
    sandbox.faults.add(503, times=1, retry_after=retry_after)

    assert forward_spool().retried == 1
    time.sleep(0.05)  # no backoff here (cap 0); a believed "inf" would never come due

    assert forward_spool().delivered == 1
