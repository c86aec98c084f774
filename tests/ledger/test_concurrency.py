"""Parallel writers on PostgreSQL: separate connections, real row locks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from consent_service.ledger.models import ConsentRecord, ConsentState, Subject
from consent_service.ledger.verification import ledger_verify
from tests.conftest import Visitor

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("postgres_only", "ledger_defaults"),
]


def in_threads(count: int, work: Any) -> list[Any]:
    def run(index: int) -> Any:
        try:
            return work(index)
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_posts_for_one_visitor_keep_every_record_and_the_last_state():
    visitor = Visitor()
    visitor.config()
    cookies = visitor.client.cookies

    def post(index: int) -> Any:
        browser = Visitor()
        browser.client.cookies = cookies
        grant = index % 2 == 0
        return browser.decide({"analytics": grant, "session_replay": not grant}).status_code

    statuses = in_threads(20, post)

    assert statuses == [201] * 20
    subject = Subject.objects.get()
    records = list(ConsentRecord.objects.filter(subject=subject).order_by("seq"))
    assert len(records) == 20
    assert ledger_verify().ok
    state = ConsentState.objects.get(subject=subject)
    assert state.last_record_id == records[-1].pk
    assert state.purposes["analytics"]["granted"] == records[-1].choices["analytics"]
    assert state.purposes["analytics"]["seq"] == records[-1].seq


def test_parallel_visitors_append_to_one_linear_chain():
    def post(index: int) -> Any:
        return Visitor().decide({"analytics": True}).status_code

    statuses = in_threads(30, post)

    assert statuses == [201] * 30
    seqs = list(ConsentRecord.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 31))
    prev_hashes = ConsentRecord.objects.values_list("prev_hash", flat=True)
    assert len(set(prev_hashes)) == 30  # no fork: every record has its own predecessor
    assert ledger_verify().ok
    assert Subject.objects.count() == 30
