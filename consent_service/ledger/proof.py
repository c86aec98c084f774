"""One subject's proof of consent: who they are, what holds now, and every record with its
evidence and chain check. Plain data, shaped for the admin's JSON and CSV exports (the
erasure admin adds the subject's erasure requests to the JSON)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone

from consent_service.ledger.chain import GENESIS_HASH, check_record, timestamp
from consent_service.ledger.models import (
    ConsentRecord,
    Purpose,
    Subject,
    SubjectIdentifier,
)
from consent_service.ledger.selectors import (
    PurposeView,
    consent_view,
    subject_history,
    subject_merged,
    subject_purposes,
)

CSV_COLUMNS = (
    "seq",
    "subject",
    "recorded_at",
    "action",
    "source",
    "policy_version",
    "gpc",
    "request_id",
    "hash",
    "prev_hash",
    "evidence_sha256",
    "ip_truncated",
    "user_agent",
    "pseudonymised_at",
    "verified",
    "failure",
)
_EVIDENCE_COLUMNS = ("ip_truncated", "user_agent", "pseudonymised_at")
# Spreadsheets run cells starting with these as formulas; user agents are client-chosen.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ProofVerification:
    checked: int
    failed_seq: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def subject_proof(*, subject: Subject) -> dict[str, Any]:
    records = _proof_records(subject)
    verification = _verification(records)
    return {
        "generated_at": _iso(timezone.now()),
        "subject": _subject(subject),
        "identifiers": _identifiers(subject),
        "current_state": subject_current_state(subject=subject),
        "records": records,
        "verification": {
            "verified": verification.ok,
            "checked": verification.checked,
            "failed_seq": verification.failed_seq,
            "reason": verification.reason,
        },
    }


def subject_proof_csv(*, subject: Subject) -> str:
    """One row per record, oldest first; each purpose key gets a `choice:<key>` column."""
    records = _proof_records(subject)
    keys = _purpose_keys(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, *(f"choice:{key}" for key in keys)])
    for record in records:
        writer.writerow([_csv_cell(value) for value in _csv_row(record, keys)])
    return buffer.getvalue()


def subject_current_state(*, subject: Subject) -> dict[str, dict[str, Any]]:
    """Per purpose: the stored decision and whether it is in effect now (not expired or stale)."""
    entries = subject_purposes(subject)
    view = consent_view(purposes=entries, gpc=False)
    keys = [*view.purposes, *(key for key in entries if key not in view.purposes)]
    return {key: _state_entry(entries.get(key), view.purposes.get(key)) for key in keys}


def record_check(*, record: ConsentRecord) -> str | None:
    """Why this one record breaks the chain, or None when it holds."""
    return _check(record, _previous_hashes(ConsentRecord.objects.filter(pk=record.pk)))


def _proof_records(subject: Subject) -> list[dict[str, Any]]:
    history = subject_history(subject).select_related("subject", "evidence").order_by("seq")
    previous = _previous_hashes(history)
    return [_record(record, _check(record, previous)) for record in history]


def _previous_hashes(records: QuerySet[ConsentRecord]) -> dict[int, str]:
    """Hash of each record's predecessor, which may belong to another subject."""
    previous_seqs = records.annotate(previous_seq=F("seq") - 1).values("previous_seq")
    found = ConsentRecord.objects.filter(seq__in=previous_seqs).values_list("seq", "hash")
    return {0: GENESIS_HASH, **dict(found)}


def _check(record: ConsentRecord, previous: dict[int, str]) -> str | None:
    expected_prev = previous.get(record.seq - 1)
    if expected_prev is None:
        return f"previous record #{record.seq - 1} is missing"
    evidence = getattr(record, "evidence", None)
    # Merged subjects' records were hashed with their own subject's uuid.
    return check_record(record, str(record.subject.uuid), expected_prev, evidence)


def _verification(records: list[dict[str, Any]]) -> ProofVerification:
    failed = next((record for record in records if not record["verified"]), None)
    if failed is None:
        return ProofVerification(len(records), None, None)
    return ProofVerification(len(records), failed["seq"], failed["failure"])


def _record(record: ConsentRecord, failure: str | None) -> dict[str, Any]:
    evidence = getattr(record, "evidence", None)
    return {
        "seq": record.seq,
        "subject": str(record.subject.uuid),
        # The chain's own timestamp format, so a reader can recompute the hash.
        "recorded_at": timestamp(record.recorded_at),
        "action": record.action,
        "source": record.source,
        "choices": record.choices,
        "policy_version": record.policy_version,
        "gpc": record.gpc,
        "request_id": record.request_id,
        "hash": record.hash,
        "prev_hash": record.prev_hash,
        "evidence_sha256": record.evidence_sha256,
        "evidence": None
        if evidence is None
        else {
            "ip_truncated": evidence.ip_truncated,
            "user_agent": evidence.user_agent,
            "pseudonymised_at": _iso(evidence.pseudonymised_at),
        },
        "verified": failure is None,
        "failure": failure,
    }


def _subject(subject: Subject) -> dict[str, Any]:
    user = subject.user
    merged = subject_merged(subject)
    return {
        "uuid": str(subject.uuid),
        "user": None if user is None else {"id": user.pk, "username": user.get_username()},
        "created_at": _iso(subject.created_at),
        "merged_into": str(subject.merged_into.uuid) if subject.merged_into else None,
        "merged_subjects": [str(uuid) for uuid in merged.values_list("uuid", flat=True)],
    }


def _identifiers(subject: Subject) -> list[dict[str, Any]]:
    identifiers = SubjectIdentifier.objects.filter(subject=subject).order_by("created_at", "pk")
    return [
        {"kind": item.kind, "value": item.value, "created_at": _iso(item.created_at)}
        for item in identifiers
    ]


def _state_entry(entry: dict[str, Any] | None, purpose: PurposeView | None) -> dict[str, Any]:
    entry = entry or {}
    return {
        "choice": entry.get("granted"),
        "in_effect": bool(purpose and purpose.granted),
        "decided_at": entry.get("decided_at"),
        "policy_version": entry.get("policy_version"),
        "source": entry.get("source"),
        "seq": entry.get("seq"),
    }


def _purpose_keys(records: list[dict[str, Any]]) -> list[str]:
    """Known purposes in their display order, then any key only old records carry."""
    used = {key for record in records for key in record["choices"]}
    known = [key for key in Purpose.objects.values_list("key", flat=True) if key in used]
    return [*known, *sorted(used.difference(known))]


def _csv_row(record: dict[str, Any], keys: list[str]) -> list[Any]:
    evidence = record["evidence"] or {}
    flat = {**record, **{name: evidence.get(name, "") for name in _EVIDENCE_COLUMNS}}
    choices = [_decision(record["choices"].get(key)) for key in keys]
    return [*(flat[column] for column in CSV_COLUMNS), *choices]


def _decision(value: bool | None) -> str:
    if value is None:
        return ""
    return "granted" if value else "refused"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _iso(value: datetime | None) -> str | None:
    return timestamp(value) if value else None
