"""Appending to the chain. Every write to the ledger goes through `ledger_write()`, which
holds the head row's lock, so the chain never forks and state never loses an update."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from consent_service.ledger.chain import GENESIS_HASH, evidence_digest, record_hash, timestamp
from consent_service.ledger.models import (
    ConsentEvidence,
    ConsentRecord,
    ConsentState,
    LedgerHead,
    Subject,
)
from consent_service.ledger.selectors import subject_purposes
from consent_service.ledger.visitor_consent import visitor_consent_refresh

ANALYTICS = "analytics"

USER_AGENT_MAX = 512


@dataclass(frozen=True)
class Evidence:
    ip_truncated: str
    user_agent: str
    request_id: str
    gpc: bool


@dataclass(frozen=True)
class Appended:
    state: ConsentState
    # Analytics was granted before this record and is not any more. What follows from
    # that (refused ids, an erasure request) is the erasure layer's: see its revocation.py.
    revoked: bool


@contextmanager
def ledger_write() -> Iterator[LedgerHead]:
    with transaction.atomic():
        yield _locked_head()


def _locked_head() -> LedgerHead:
    head = LedgerHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # Recreated from the last record, so a lost head row cannot fork the chain.
    last = ConsentRecord.objects.order_by("-seq").first()
    LedgerHead.objects.get_or_create(
        pk=1,
        defaults={"seq": last.seq if last else 0, "hash": last.hash if last else GENESIS_HASH},
    )
    return LedgerHead.objects.select_for_update().get(pk=1)


def consent_record_append(
    *,
    head: LedgerHead,
    subject: Subject,
    choices: dict[str, bool],
    action: str,
    source: str,
    policy_version: str,
    evidence: Evidence,
    carried: dict[str, dict[str, Any]] | None = None,
) -> Appended:
    """Append one record and fold it into the subject's state. Call inside ledger_write().

    `carried` holds state entries copied from another subject at login: their
    original decision time and policy version are kept, so a carry never
    extends a decision's lifetime.
    """
    nonce = secrets.token_hex(16)
    user_agent = evidence.user_agent[:USER_AGENT_MAX]  # digest what is stored, no more
    record = ConsentRecord(
        seq=head.seq + 1,
        subject=subject,
        choices=choices,
        policy_version=policy_version,
        action=action,
        source=source,
        gpc=evidence.gpc,
        recorded_at=timezone.now(),
        request_id=evidence.request_id,
        evidence_sha256=evidence_digest(
            nonce=nonce, ip_truncated=evidence.ip_truncated, user_agent=user_agent
        ),
        prev_hash=head.hash,
    )
    record.hash = record_hash(record, str(subject.uuid))
    record.save()
    ConsentEvidence.objects.create(
        record=record,
        nonce=nonce,
        ip_truncated=evidence.ip_truncated,
        user_agent=user_agent,
    )
    head.seq, head.hash = record.seq, record.hash
    head.save(update_fields=["seq", "hash"])
    return _fold_into_state(subject, record, carried or {})


def _fold_into_state(
    subject: Subject, record: ConsentRecord, carried: dict[str, dict[str, Any]]
) -> Appended:
    previous = subject_purposes(subject)
    purposes = dict(previous)
    for key, granted in record.choices.items():
        purposes[key] = carried.get(key) or {
            "granted": granted,
            "decided_at": timestamp(record.recorded_at),
            "policy_version": record.policy_version,
            "source": record.source,
        }
        purposes[key] = {**purposes[key], "seq": record.seq}
    state, _ = ConsentState.objects.update_or_create(
        subject=subject,
        defaults={"purposes": purposes, "last_record": record, "updated_at": record.recorded_at},
    )
    visitor_consent_refresh(subject_id=subject.pk)
    revoked = _granted(previous, ANALYTICS) and not _granted(purposes, ANALYTICS)
    return Appended(state, revoked)


def _granted(purposes: dict[str, Any], key: str) -> bool:
    return bool(purposes.get(key, {}).get("granted"))
