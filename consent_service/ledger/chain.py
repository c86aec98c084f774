"""Hashing for the tamper-evident chain of consent records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consent_service.ledger.models import ConsentEvidence, ConsentRecord

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_digest(*, nonce: str, ip_truncated: str, user_agent: str) -> str:
    return sha256_hex(canonical_json([nonce, ip_truncated, user_agent]))


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def record_hash(record: ConsentRecord, subject_uuid: str) -> str:
    content = {
        "seq": record.seq,
        "subject": subject_uuid,
        "choices": record.choices,
        "policy_version": record.policy_version,
        "action": record.action,
        "source": record.source,
        "gpc": record.gpc,
        "recorded_at": timestamp(record.recorded_at),
        "request_id": record.request_id,
        "evidence": record.evidence_sha256,
        "prev": record.prev_hash,
    }
    return sha256_hex(canonical_json(content))


@dataclass(frozen=True)
class Break:
    seq: int
    record_id: int | None
    reason: str


def check_record(
    record: ConsentRecord, subject_uuid: str, expected_prev: str, evidence: ConsentEvidence | None
) -> str | None:
    """Why this record breaks the chain, or None when it holds."""
    if record.prev_hash != expected_prev:
        return "prev_hash does not match the previous record's hash"
    if record_hash(record, subject_uuid) != record.hash:
        return "content does not match its hash"
    if evidence is None:
        return "evidence row is missing"
    if evidence.nonce and evidence.pseudonymised_at is None:
        digest = evidence_digest(
            nonce=evidence.nonce,
            ip_truncated=evidence.ip_truncated,
            user_agent=evidence.user_agent,
        )
        if digest != record.evidence_sha256:
            return "evidence does not match its digest"
    return None
