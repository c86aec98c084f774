from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction

from consent_service.ledger.models import ConsentEvidence, ConsentRecord, LedgerHead
from consent_service.ledger.verification import ledger_verify
from tests.ledger.tampering import execute, triggers_disabled

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_records(make_visitor):
    first, second = make_visitor(), make_visitor()
    assert first.decide({"analytics": True, "session_replay": True}).status_code == 201
    assert second.decide({"analytics": False}).status_code == 201
    assert first.withdraw().status_code == 201
    return list(ConsentRecord.objects.order_by("seq"))


def test_records_form_one_chain_from_genesis(three_records):
    assert [r.seq for r in three_records] == [1, 2, 3]
    assert three_records[0].prev_hash == "0" * 64
    assert three_records[1].prev_hash == three_records[0].hash
    assert three_records[2].prev_hash == three_records[1].hash
    head = LedgerHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (3, three_records[2].hash)


def test_verify_ledger_passes_on_an_untouched_ledger(three_records, capsys):
    call_command("verify_ledger")

    assert "ledger intact: 3 records verified" in capsys.readouterr().out


def test_verify_ledger_passes_on_an_empty_ledger(capsys):
    call_command("verify_ledger")

    assert "0 records verified" in capsys.readouterr().out


@pytest.mark.parametrize("statement", ["UPDATE", "DELETE"])
def test_database_refuses_update_and_delete_of_records(three_records, statement):
    sql = {
        "UPDATE": "UPDATE ledger_consentrecord SET source = 'admin' WHERE seq = 2",
        "DELETE": "DELETE FROM ledger_consentrecord WHERE seq = 2",
    }[statement]

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute(sql)

    assert ConsentRecord.objects.get(seq=2).source == "api"


def test_orm_refuses_to_save_an_existing_record(three_records):
    record = three_records[0]
    record.source = "admin"

    with pytest.raises(ValueError, match="append-only"):
        record.save()


def test_altered_choices_are_found_and_named(three_records):
    with triggers_disabled():
        execute(
            "UPDATE ledger_consentrecord SET choices = %s WHERE seq = 2",
            [json.dumps({"analytics": True})],
        )

    with pytest.raises(CommandError, match=r"record #2 .*content does not match its hash"):
        call_command("verify_ledger")


def test_a_rehashed_record_breaks_its_successor(three_records):
    """Recomputing the altered record's own hash moves the break to the next link."""
    with triggers_disabled():
        execute("UPDATE ledger_consentrecord SET hash = %s WHERE seq = 2", ["f" * 64])

    result = ledger_verify()

    assert result.first_break is not None
    assert result.first_break.seq == 2  # its content no longer matches the forged hash


def delete_record(record: ConsentRecord) -> None:
    """Delete a record with everything pointing at it, as a careful attacker would."""
    with triggers_disabled():
        execute("DELETE FROM ledger_consentstate WHERE last_record_id = %s", [record.pk])
        execute("DELETE FROM ledger_consentevidence WHERE record_id = %s", [record.pk])
        execute("DELETE FROM ledger_consentrecord WHERE id = %s", [record.pk])


def test_a_deleted_record_leaves_a_sequence_gap(three_records):
    delete_record(three_records[1])

    result = ledger_verify()

    assert result.first_break is not None
    assert result.first_break.seq == 2
    assert "sequence gap" in result.first_break.reason


def test_a_truncated_tail_is_found_through_the_head(three_records):
    delete_record(three_records[2])

    result = ledger_verify()

    assert result.first_break is not None
    assert "head says #3" in result.first_break.reason


def test_altered_evidence_is_found(three_records):
    ConsentEvidence.objects.filter(record=three_records[0]).update(ip_truncated="10.9.9.0")

    result = ledger_verify()

    assert result.first_break is not None
    assert result.first_break.seq == 1
    assert "evidence" in result.first_break.reason


def test_pseudonymised_evidence_still_verifies(three_records):
    """Erasure clears IP and user agent (and the nonce) without breaking the chain."""
    from django.utils import timezone

    ConsentEvidence.objects.filter(record=three_records[0]).update(
        ip_truncated="", user_agent="", nonce="", pseudonymised_at=timezone.now()
    )

    assert ledger_verify().ok


def test_evidence_is_stored_truncated(make_visitor):
    visitor = make_visitor(**{"User-Agent": "Mozilla/5.0 test"})
    visitor.decide({"analytics": True}, headers={"X-Request-ID": "req-123"})

    record = ConsentRecord.objects.get()
    assert record.request_id == "req-123"
    assert record.evidence.ip_truncated == "127.0.0.0"
    assert record.evidence.user_agent == "Mozilla/5.0 test"


def test_an_overlong_user_agent_is_cut_and_still_verifies(make_visitor):
    visitor = make_visitor(**{"User-Agent": "x" * 2000})
    assert visitor.decide({"analytics": True}).status_code == 201

    assert len(ConsentRecord.objects.get().evidence.user_agent) == 512
    assert ledger_verify().ok
