"""Property-based tests of the decoder and the gate (RELIABILITY.md T02): random JSON shapes,
encodings and mixes of ids. Never a 500; nothing forwarded names an id that is not the
caller's own live id or one it just claimed."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent_service.ledger.models import SubjectIdentifier
from consent_service.proxy.codecs import Limits, PayloadError, decode_payload, normalise_id
from consent_service.proxy.envelope import encode_json, event_problem, rebuilt_event
from consent_service.proxy.gate import Grant, Holder, IdOwner, gate_for_caller, named_ids
from tests.conftest import TOKEN, Visitor, anonymous_id

OWN, OWN_REFUSED = anonymous_id(1), anonymous_id(2)
THEIRS, THEIRS_REFUSED = anonymous_id(3), anonymous_id(4)
UNBOUND, GUESSABLE = anonymous_id(5), "user-42"
BOTH = Grant(analytics=True, replay=True)
CALLER = Holder(1, BOTH, {OWN: False, OWN_REFUSED: True})
OWNERS = {
    THEIRS: IdOwner(2, False, BOTH),
    THEIRS_REFUSED: IdOwner(2, True, BOTH),
    UNBOUND: None,
    GUESSABLE: None,
}
LIMITS = Limits(max_decoded_bytes=1 << 20, max_events=100, max_depth=64)
EVENT_NAMES = ["$pageview", "$identify", "$create_alias", "$merge_dangerously", "$snapshot", ""]
ID_FIELDS = ["distinct_id", "$distinct_id"]
LINK_FIELDS = ["distinct_id"] * 3 + ["$anon_distinct_id", "alias", "$device_id", "token"]
FORM = "application/x-www-form-urlencoded"
# As PostHog clients send bodies: gzip without a hint is what posthog-js sends today.
ENCODINGS = ["plain", "gzip", "gzip-js", "form", "base64", "gzip-base64"]

ids = st.sampled_from([OWN, OWN_REFUSED, THEIRS, THEIRS_REFUSED, UNBOUND, GUESSABLE])
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=300),
    st.just("\ud800"),
    st.just(OWN + "x" * 200),
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    """`usual` nine times in ten: a well-formed event must get past screening often."""
    return st.integers(0, 9).flatmap(lambda n: usual if n else odd)


@st.composite
def events(draw: st.DrawFn) -> Any:
    event: dict[str, Any] = {"event": draw(mostly(st.sampled_from(EVENT_NAMES), junk))}
    fields = draw(st.lists(st.sampled_from(LINK_FIELDS), max_size=5))
    properties = {name: draw(mostly(ids, junk)) for name in fields}
    for name in draw(st.lists(st.sampled_from(ID_FIELDS), max_size=2)):
        event[name] = draw(mostly(ids, junk))
    event["properties"] = draw(mostly(st.just(properties), json_values))
    return draw(mostly(st.just(event), json_values))


def encode(document: Any, how: str) -> tuple[bytes, dict[str, str], str]:
    """A body as some PostHog client would send it: (body, query, content type)."""
    text = json.dumps(document).encode()
    if how == "gzip":
        return gzip.compress(text), {}, "text/plain"
    if how == "form":
        data = quote(base64.b64encode(text).decode())
        return (
            f"data={data}".encode(),
            {"compression": "base64"},
            "application/x-www-form-urlencoded",
        )
    if how == "base64":
        return base64.b64encode(gzip.compress(text)), {}, "text/plain"
    if how == "gzip-base64":  # base64 inside gzip, as old SDKs wrapped it
        return gzip.compress(base64.b64encode(text)), {}, "text/plain"
    if how == "gzip-js":
        return gzip.compress(text), {"compression": "gzip-js"}, "text/plain"
    return text, {}, "application/json"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    document=json_values | st.lists(events(), max_size=5),
    how=st.sampled_from(ENCODINGS),
    garbage=st.binary(max_size=8),
)
def test_the_decoder_answers_every_body_with_events_or_a_4xx(document, how, garbage):
    body, query, content_type = encode(document, how)
    for candidate in (body, body + garbage, garbage + body):
        try:
            payload = decode_payload(
                body=candidate,
                query=query,
                content_type=content_type,
                content_encoding="",
                limits=LIMITS,
            )
        except PayloadError as error:
            assert 400 <= error.status < 500
        else:
            assert isinstance(payload.events, list)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(batch=st.lists(events(), min_size=1, max_size=6))
def test_every_forwarded_event_names_only_the_callers_live_or_claimed_ids(batch):
    screened = [event for event in batch if event_problem(event, TOKEN) is None]

    result = gate_for_caller(
        screened,
        caller=CALLER,
        owners=OWNERS,
        claimable=lambda value: value == UNBOUND,
        recordings=False,
    )

    claimed = result.claims().get(CALLER.subject_id, set())
    assert claimed <= {UNBOUND}
    for kept in result.kept:
        forwarded = rebuilt_event(kept.event, kept.distinct_id)
        assert set(named_ids(forwarded)) <= {OWN} | claimed
        assert forwarded["properties"]["distinct_id"] == forwarded["distinct_id"]


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(events(), min_size=1, max_size=4),
    how=st.sampled_from(ENCODINGS),
)
def test_through_the_proxy_never_a_500_and_nothing_foreign_arrives(batch, how, sandbox):
    visitor = Visitor()
    visitor.decide({"analytics": True, "session_replay": True})
    other = Visitor()
    other.decide({"analytics": True, "session_replay": True})
    other.client.post("/ph/e/", json.dumps({"event": "e", "distinct_id": THEIRS}), "text/plain")
    sandbox.store.clear()
    body, query, content_type = encode({"api_key": TOKEN, "batch": batch}, how)
    path = "/ph/e/" + (f"?{urlencode(query)}" if query else "")

    response = visitor.client.post(path, body, content_type=content_type)

    assert response.status_code in (200, 400, 413), response.content
    mine = set(
        SubjectIdentifier.objects.filter(
            subject__identifiers__value=_visitor_id(visitor), refused_at__isnull=True
        ).values_list("value", flat=True)
    )
    for captured in sandbox.store.events:
        assert set(named_ids(captured.event)) <= mine


def _visitor_id(visitor: Visitor) -> str:
    signed = visitor.visitor_id_cookie or ""
    return signed.split(":")[0]


# --- T02: round trip, subset, own ids only, consented events intact, handled rejects ----

SNAPSHOT = "$snapshot"
# The fields PostHog reads an id from (P16, P17): where it merges persons, not any property.
ROOT_IDS = ("distinct_id", "$distinct_id")
PROPERTY_IDS = ("distinct_id", "$anon_distinct_id", "$device_id")
ALIASING = ("$create_alias", "$merge_dangerously")
REPLAY_ONLY = Grant(analytics=False, replay=True)
CALLERS = [
    None,  # no cookie, or no decision
    Holder(1, Grant(analytics=False, replay=False), {OWN: False, OWN_REFUSED: True}),
    Holder(1, Grant(analytics=True, replay=False), {OWN: False, OWN_REFUSED: True}),
    Holder(1, REPLAY_ONLY, {OWN: False, OWN_REFUSED: True}),
    CALLER,
]
text_with_surrogates = st.one_of(
    st.text(max_size=20),
    st.builds(lambda a, b: f"{a}\ud800{b}", st.text(max_size=5), st.text(max_size=5)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    text_with_surrogates,
)
objects = st.dictionaries(
    text_with_surrogates.filter(lambda key: key != "batch"),
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    ),
    max_size=6,
)


@st.composite
def own_events(draw: st.DrawFn) -> dict[str, Any]:
    """Well formed, every id the caller's own: these must all get through, unchanged."""
    properties = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    for name in draw(st.lists(st.sampled_from(PROPERTY_IDS + ("alias",)), max_size=3)):
        properties[name] = OWN
    event = {"event": draw(st.sampled_from(EVENT_NAMES[:-1])), "properties": properties}
    for name in draw(st.lists(st.sampled_from(ROOT_IDS), max_size=2)):
        event[name] = OWN
    if not set(event) & set(ROOT_IDS):
        properties["distinct_id"] = OWN
    return event


def shaped(events: list[Any], shape: str) -> Any:
    if shape == "batch":
        return {"api_key": TOKEN, "batch": events}
    return events if shape == "array" else events[0]


def decoded(body: bytes, query: dict[str, str], content_type: str, encoding: str = "") -> Any:
    return decode_payload(
        body=body, query=query, content_type=content_type, content_encoding=encoding, limits=LIMITS
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    events=st.lists(
        objects | events().filter(lambda e: isinstance(e, dict)), min_size=1, max_size=6
    ),
    shape=st.sampled_from(["batch", "array", "single"]),
    how=st.sampled_from(ENCODINGS),
)
def test_decoding_gives_back_exactly_the_events_encoded_in_every_encoding(events, shape, how):
    if shape == "single":
        events = events[:1]
    body, query, content_type = encode(shaped(events, shape), how)

    payload = decoded(body, query, content_type)

    assert payload.events == events
    assert payload.shape == shape


def identity_values(event: dict[str, Any]) -> set[str | None]:
    """Every id PostHog would read from this event, by our own reading of P16/P17."""
    properties = event.get("properties") or {}
    values = [event.get(name) for name in ROOT_IDS]
    values += [properties.get(name) for name in PROPERTY_IDS]
    if event.get("event") in ALIASING:
        values.append(properties.get("alias"))
    return {normalise_id(value) for value in values if value is not None}


def consented_own(event: Any, caller: Holder | None, recordings: bool) -> bool:
    """Well formed, consented for what it is, and naming the caller's live id only."""
    if caller is None or event_problem(event, TOKEN) is not None or not caller.grant.analytics:
        return False
    if (recordings or event["event"] == SNAPSHOT) and not caller.grant.replay:
        return False
    return posthog_distinct_id(event) == OWN and identity_values(event) == {OWN}


def posthog_distinct_id(event: dict[str, Any]) -> str | None:
    """The first id given of root distinct_id, $distinct_id, properties.distinct_id."""
    properties = event.get("properties") or {}
    given = [event.get("distinct_id"), event.get("$distinct_id"), properties.get("distinct_id")]
    return next((normalise_id(value) for value in given if value is not None), None)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    batch=st.lists(events() | own_events(), min_size=1, max_size=8),
    caller=st.sampled_from(CALLERS),
    recordings=st.booleans(),
)
def test_the_gate_keeps_a_subset_naming_only_own_ids_and_every_consented_own_event(
    batch, caller, recordings
):
    sent = copy.deepcopy(batch)
    screened = [event for event in batch if event_problem(event, TOKEN) is None]

    result = gate_for_caller(
        screened,
        caller=caller,
        owners=OWNERS,
        claimable=lambda value: value == UNBOUND,
        recordings=recordings,
    )

    kept = [id(entry.event) for entry in result.kept]
    assert kept == [id(event) for event in screened if id(event) in kept]  # a subset, in order
    if caller is None or not caller.grant.analytics:
        assert not result.kept
    allowed = {OWN} | result.claims().get(1, set())
    assert allowed <= {OWN, UNBOUND}
    for entry in result.kept:
        original = sent[next(i for i, event in enumerate(batch) if event is entry.event)]
        removed = set(original["properties"]) - set(entry.event["properties"])
        assert removed <= {"$anon_distinct_id", "$device_id", "alias"}, "only linked ids go"
        assert entry.event == {
            **original,
            "properties": {k: v for k, v in original["properties"].items() if k not in removed},
        }
        forwarded = rebuilt_event(copy.deepcopy(entry.event), entry.distinct_id)
        assert identity_values(forwarded) <= allowed
        if recordings or forwarded["event"] == SNAPSHOT:
            assert caller.grant.replay
        encode_json(forwarded)  # what goes to the spool: never raises, lone surrogates too
    for before, event in zip(sent, batch, strict=True):
        if consented_own(before, caller, recordings):
            assert id(event) in kept and event == before, before


truncated_gzip = st.builds(
    lambda document, cut: gzip.compress(json.dumps(document).encode())[:cut],
    json_values,
    st.integers(0, 40),
)
deep = st.builds(
    lambda n, opener: opener * n + b"1" + (b"]" if opener == b"[" else b"}") * n,
    st.integers(60, 20_000),
    st.sampled_from([b"[", b'{"a":']),
)
object_bomb = st.integers(1_000, 20_000).map(lambda n: b"[" + b"{}," * n + b"{}]")
lone_surrogates = st.builds(
    lambda raw, escaped: (
        b'[{"event":"e","properties":{"distinct_id":"'
        + (b"\xed\xa0\x80" if raw else b"\\udc00")
        + b'"}},{"event":"ok","distinct_id":"'
        + escaped.encode()
        + b'"}]'
    ),
    st.booleans(),
    st.sampled_from([OWN, "\\ud800", "x\\udfffy"]),
)
malformed = st.one_of(st.binary(max_size=300), truncated_gzip, deep, object_bomb, lone_surrogates)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    raw=malformed,
    wrap=st.sampled_from(["none", "gzip", "base64", "form"]),
    hint=st.sampled_from(["", "gzip", "gzip-js", "base64", "b64", "lz64", "deflate"]),
    content_type=st.sampled_from(["text/plain", "application/json", FORM, ""]),
)
def test_malformed_bodies_take_the_handled_reject_path_or_decode_to_events(
    raw, wrap, hint, content_type
):
    body = {
        "none": raw,
        "gzip": gzip.compress(raw),
        "base64": base64.b64encode(raw),
        "form": b"data=" + quote(base64.b64encode(raw).decode()).encode(),
    }[wrap]

    try:
        payload = decoded(body, {"compression": hint} if hint else {}, content_type)
    except PayloadError as error:  # the view answers these with their 4xx, nothing else
        assert 400 <= error.status < 500
        return
    screened = [event for event in payload.events if event_problem(event, TOKEN) is None]
    result = gate_for_caller(
        screened, caller=CALLER, owners=OWNERS, claimable=lambda v: v == UNBOUND, recordings=False
    )
    for entry in result.kept:
        encode_json(rebuilt_event(entry.event, entry.distinct_id))
