"""The gate's rules, without HTTP: who an event may be sent for, and which ids it may name."""

from __future__ import annotations

from typing import Any

from consent_service.proxy.gate import (
    GateResult,
    Grant,
    Holder,
    IdOwner,
    gate_for_caller,
    gate_for_owners,
    named_ids,
    settle,
)

BOTH = Grant(analytics=True, replay=True)
ANALYTICS_ONLY = Grant(analytics=True, replay=False)
NOTHING = Grant(analytics=False, replay=False)
ME, OTHER = 1, 2
MINE, MINE_TOO, REFUSED = "a-mine", "a-mine-2", "a-refused"
NEW, GUESSABLE, THEIRS = "a-new", "user-9", "a-theirs"


def claimable(value: str) -> bool:
    return value.startswith("a-")  # stands in for the UUIDv7 shape


def event(name: str, distinct_id: Any = MINE, **properties: Any) -> dict[str, Any]:
    return {"event": name, "properties": {"distinct_id": distinct_id, **properties}}


def caller(grant: Grant = BOTH) -> Holder:
    return Holder(ME, grant, {MINE: False, MINE_TOO: False, REFUSED: True})


OWNERS = {NEW: None, GUESSABLE: None, THEIRS: IdOwner(OTHER, False, BOTH)}


def judge(events: list[dict[str, Any]], **kwargs: Any) -> GateResult:
    options: dict[str, Any] = {
        "caller": caller(),
        "owners": OWNERS,
        "claimable": claimable,
        "recordings": False,
    }
    return gate_for_caller(events, **{**options, **kwargs})


def test_the_callers_own_events_pass_and_claim_nothing():
    result = judge([event("$pageview", **{"$device_id": MINE_TOO})])

    assert [k.distinct_id for k in result.kept] == [MINE]
    assert result.claims() == {}


def test_no_caller_or_no_grant_forwards_nothing_whatever_the_ids():
    events = [event("$pageview", THEIRS), event("$pageview", MINE)]

    assert judge(events, caller=None).dropped == {"no_consent": 2}
    assert judge(events, caller=caller(NOTHING)).dropped == {"no_consent": 2}


def test_another_subjects_id_is_never_forwarded_for_the_caller_even_when_it_consented():
    result = judge([event("$pageview", THEIRS)])

    assert result.kept == []
    assert result.dropped == {"foreign_id": 1}


def test_an_unbound_anonymous_id_is_claimed_and_a_guessable_one_is_not():
    result = judge([event("$pageview", NEW), event("$identify", GUESSABLE)])

    assert [k.distinct_id for k in result.kept] == [NEW]
    assert result.claims() == {ME: {NEW}}
    assert result.dropped == {"unclaimable_id": 1}


def test_a_refused_id_of_the_caller_stays_refused():
    assert judge([event("$pageview", REFUSED)]).dropped == {"refused_id": 1}


def test_foreign_linked_ids_and_device_ids_are_removed_and_the_event_kept():
    identify = event("$identify", MINE, **{"$anon_distinct_id": THEIRS, "$device_id": REFUSED})
    alias = event("$create_alias", MINE, alias=GUESSABLE)
    merge = event("$merge_dangerously", MINE, alias=NEW)

    result = judge([identify, alias, merge])

    kept = [k.event["properties"] for k in result.kept]
    assert kept[0] == {"distinct_id": MINE}
    assert kept[1] == {"distinct_id": MINE}
    assert kept[2] == {"distinct_id": MINE, "alias": NEW}
    assert result.stripped == 3
    assert result.claims() == {ME: {NEW}}


def test_alias_is_only_an_id_on_events_that_merge():
    result = judge([event("signed_up", MINE, alias="Bob the builder")])

    assert result.kept[0].event["properties"]["alias"] == "Bob the builder"


def test_the_root_distinct_id_is_the_one_judged_as_posthog_reads_it_first():
    smuggled = {"event": "e", "distinct_id": THEIRS, "properties": {"distinct_id": MINE}}
    dollar = {"event": "e", "$distinct_id": THEIRS, "properties": {"distinct_id": MINE}}

    assert judge([smuggled, dollar]).dropped == {"foreign_id": 2}


def test_ids_are_judged_after_posthogs_normalisation():
    long_theirs = THEIRS + "x" * 300
    owners = {**OWNERS, long_theirs[:200]: IdOwner(OTHER, False, BOTH)}

    result = judge([event("e", long_theirs)], owners=owners)

    assert result.dropped == {"foreign_id": 1}


def test_snapshots_need_session_replay():
    result = judge([event("$snapshot"), event("$pageview")], caller=caller(ANALYTICS_ONLY))

    assert result.dropped == {"no_replay_consent": 1}
    assert judge([event("x")], caller=caller(ANALYTICS_ONLY), recordings=True).kept == []


def test_an_event_without_distinct_id_is_dropped():
    assert judge([{"event": "e", "properties": {}}]).dropped == {"no_distinct_id": 1}


def test_named_ids_cover_every_field_posthog_links():
    identify = {
        "event": "$identify",
        "distinct_id": "root",
        "properties": {"distinct_id": "prop", "$anon_distinct_id": "anon", "$device_id": 7},
    }

    assert named_ids(identify) == ["root", "anon", "7"]


def test_settle_drops_events_whose_claims_could_not_be_bound():
    result = judge([event("$pageview", NEW), event("$pageview", MINE)])

    kept = settle(result, {ME: set()})  # at the cap, or another subject bound it first

    assert [k.distinct_id for k in kept] == [MINE]
    assert result.dropped == {"unbindable_id": 1}


def test_the_server_route_judges_each_event_by_its_own_subject():
    owners = {
        "u-1": IdOwner(ME, False, BOTH),
        "u-2": IdOwner(OTHER, False, NOTHING),
        "u-3": IdOwner(OTHER, True, BOTH),
        "u-4": None,
    }
    events = [event("paid", value) for value in ("u-1", "u-2", "u-3", "u-4")]

    result = gate_for_owners(events, owners=owners, claimable=lambda value: True)

    assert [k.distinct_id for k in result.kept] == ["u-1"]
    assert result.dropped == {"no_consent": 1, "refused_id": 1, "unknown_id": 1}


def test_on_the_server_route_an_alias_to_another_subject_is_removed():
    owners = {"u-1": IdOwner(ME, False, BOTH), "u-2": IdOwner(OTHER, False, BOTH), "new": None}
    alias = event("$create_alias", "u-1", alias="u-2")
    claim = event("$create_alias", "u-1", alias="new")

    result = gate_for_owners([alias, claim], owners=owners, claimable=lambda value: True)

    assert "alias" not in result.kept[0].event["properties"]
    assert result.claims() == {ME: {"new"}}
