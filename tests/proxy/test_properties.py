"""Property-based tests of the decoder and the gate (RELIABILITY.md T02): random JSON shapes,
encodings and mixes of ids. Never a 500; nothing forwarded names an id that is not the
caller's own live id or one it just claimed."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent_service.ledger.models import SubjectIdentifier
from consent_service.proxy.codecs import Limits, PayloadError, decode_payload
from consent_service.proxy.envelope import event_problem, rebuilt_event
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
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
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
    return text, {}, "application/json"


@settings(max_examples=300, deadline=None)
@given(
    document=json_values | st.lists(events(), max_size=5),
    how=st.sampled_from(["plain", "gzip", "form", "base64"]),
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


@settings(max_examples=500, deadline=None)
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
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(events(), min_size=1, max_size=4),
    how=st.sampled_from(["plain", "gzip", "form", "base64"]),
)
def test_through_the_proxy_never_a_500_and_nothing_foreign_arrives(batch, how, sandbox):
    visitor = Visitor()
    visitor.decide({"analytics": True, "session_replay": True})
    other = Visitor()
    other.decide({"analytics": True, "session_replay": True})
    other.client.post("/ph/e/", json.dumps({"event": "e", "distinct_id": THEIRS}), "text/plain")
    sandbox.store.clear()
    body, query, content_type = encode({"api_key": TOKEN, "batch": batch}, how)
    path = "/ph/e/" + ("?compression=base64" if query else "")

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
