from __future__ import annotations

from typing import Any

from consent_service.proxy.gate import (
    Actor,
    GateResult,
    Grant,
    IdOwner,
    flags_allowed,
    linked_ids,
    prepare,
)
from consent_service.proxy.gate import gate as gate_prepared

BOTH = Grant(analytics=True, replay=True)


def gate(events: list[dict[str, Any]], **kwargs: Any) -> GateResult:
    return gate_prepared(prepare(events), **kwargs)


ANALYTICS_ONLY = Grant(analytics=True, replay=False)
NOTHING = Grant(analytics=False, replay=False)


def event(name: str, distinct_id: str | None = "anon-1", **properties):
    props = {"distinct_id": distinct_id, **properties} if distinct_id else dict(properties)
    return {"event": name, "properties": props}


def actor(grant: Grant = BOTH, ids: dict[str, bool] | None = None) -> Actor:
    return Actor(
        subject_id=1, grant=grant, distinct_ids=ids if ids is not None else {"anon-1": False}
    )


def test_consented_events_pass_and_unbound_ids_are_bound():
    result = gate(
        [event("$pageview", "anon-2", **{"$device_id": "dev-1"})],
        recordings=False,
        actor=actor(),
        owners={"anon-2": None, "dev-1": None},
    )

    assert len(result.kept) == 1
    assert result.to_bind == {"anon-2", "dev-1"}


def test_without_analytics_everything_is_dropped():
    result = gate([event("a"), event("b")], recordings=False, actor=actor(NOTHING), owners={})

    assert result.kept == []
    assert result.dropped == {"no_consent": 2}


def test_snapshots_need_session_replay():
    events = [event("$snapshot"), event("$pageview")]

    result = gate(events, recordings=False, actor=actor(ANALYTICS_ONLY), owners={})

    assert [e["event"] for e in result.kept] == ["$pageview"]
    assert result.dropped == {"no_replay_consent": 1}


def test_everything_on_the_recordings_route_needs_session_replay():
    result = gate([event("anything")], recordings=True, actor=actor(ANALYTICS_ONLY), owners={})

    assert result.dropped == {"no_replay_consent": 1}


def test_an_event_without_distinct_id_is_dropped():
    result = gate([event("a", None)], recordings=False, actor=actor(), owners={})

    assert result.dropped == {"no_distinct_id": 1}


def test_a_refused_id_is_dropped_even_with_consent():
    refused = actor(ids={"anon-1": True})

    result = gate([event("a")], recordings=False, actor=refused, owners={})

    assert result.dropped == {"refused_id": 1}


def test_identify_needs_every_linked_id_consented():
    identify = event("$identify", "user-9", **{"$anon_distinct_id": "anon-1"})
    owners = {"user-9": IdOwner(subject_id=2, refused=False, grant=NOTHING)}

    result = gate([identify], recordings=False, actor=actor(), owners=owners)

    assert result.dropped == {"unconsented_id": 1}


def test_identify_linking_a_refused_id_is_dropped():
    alias = event("$create_alias", "anon-1", alias="old-id")
    owners = {"old-id": IdOwner(subject_id=1, refused=True, grant=BOTH)}

    result = gate([alias], recordings=False, actor=actor(), owners=owners)

    assert result.dropped == {"refused_id": 1}


def test_identify_with_consented_ids_passes_and_binds_the_new_one():
    identify = event("$identify", "user-9", **{"$anon_distinct_id": "anon-1"})

    result = gate([identify], recordings=False, actor=actor(), owners={"user-9": None})

    assert len(result.kept) == 1
    assert result.to_bind == {"user-9"}


def test_a_mixed_batch_is_decided_per_event():
    events = [event("kept"), event("refused", "gone"), event("no-id", None)]
    owners = {"gone": IdOwner(subject_id=3, refused=True, grant=NOTHING)}

    result = gate(events, recordings=False, actor=actor(), owners=owners)

    assert [e["event"] for e in result.kept] == ["kept"]
    assert result.dropped == {"refused_id": 1, "no_distinct_id": 1}


def test_without_a_visitor_the_owner_of_the_distinct_id_decides():
    """Server-side SDK traffic carries no visitor cookie."""
    owners = {
        "consented": IdOwner(subject_id=5, refused=False, grant=BOTH),
        "refusing": IdOwner(subject_id=6, refused=False, grant=NOTHING),
        "stranger": None,
    }
    events = [event("a", "consented"), event("b", "refusing"), event("c", "stranger")]

    result = gate(events, recordings=False, actor=None, owners=owners)

    assert [e["event"] for e in result.kept] == ["a"]
    assert result.dropped == {"no_consent": 2}
    assert result.to_bind == set()


def test_linked_ids_read_properties_and_top_level():
    identify = {
        "event": "$identify",
        "distinct_id": "user-1",
        "properties": {"$anon_distinct_id": "anon", "$device_id": "dev"},
    }

    assert linked_ids(identify) == ["user-1", "anon", "dev"]


def test_flags_are_allowed_only_for_a_consented_visitor_with_clean_ids():
    body = {"distinct_id": "anon-1", "$device_id": "dev-1", "token": "phc"}

    assert flags_allowed(body, actor=actor(), owners={"dev-1": None})
    assert not flags_allowed(body, actor=actor(NOTHING), owners={"dev-1": None})
    assert not flags_allowed(body, actor=None, owners={"anon-1": None, "dev-1": None})
    refused = {"dev-1": IdOwner(subject_id=1, refused=True, grant=BOTH)}
    assert not flags_allowed(body, actor=actor(), owners=refused)
