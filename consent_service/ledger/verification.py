"""Walks the whole chain and reports the first record that breaks it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from consent_service.ledger.chain import GENESIS_HASH, Break, check_record
from consent_service.ledger.models import ConsentRecord, LedgerHead


@dataclass(frozen=True)
class VerificationResult:
    checked: int
    first_break: Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def ledger_verify(*, chunk_size: int = 2000) -> VerificationResult:
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for record in _records(chunk_size):
        if record.seq != expected_seq:
            reason = f"sequence gap: expected #{expected_seq}, found #{record.seq}"
            return VerificationResult(checked, Break(expected_seq, record.pk, reason))
        evidence = getattr(record, "evidence", None)
        reason_or_none = check_record(record, str(record.subject.uuid), expected_prev, evidence)
        if reason_or_none:
            return VerificationResult(checked, Break(record.seq, record.pk, reason_or_none))
        expected_prev, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
    return VerificationResult(checked, _check_head(expected_seq - 1, expected_prev))


def _records(chunk_size: int) -> Iterator[ConsentRecord]:
    queryset = ConsentRecord.objects.select_related("subject", "evidence").order_by("seq")
    return queryset.iterator(chunk_size=chunk_size)


def _check_head(last_seq: int, last_hash: str) -> Break | None:
    """A truncated tail leaves every remaining row valid; the head row still knows."""
    head = LedgerHead.objects.filter(pk=1).first()
    if head is None:
        return Break(0, None, "ledger head row is missing") if last_seq else None
    if head.seq != last_seq or head.hash != last_hash:
        return Break(last_seq + 1, None, f"head says #{head.seq} but the chain ends at #{last_seq}")
    return None
