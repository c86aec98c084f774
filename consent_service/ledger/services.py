"""Consent decisions: reading the caller's consent, and the ledger writes that change it.

The writes take the locked head (call them inside `ledger_write()`) and report whether they
revoked analytics; the erasure layer above wraps them and applies what a revocation means
(`consent_service.erasure.revocation`). The ledger itself imports nothing from above."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet

from consent_service.core.exceptions import StalePolicyVersion
from consent_service.core.metrics import consent_decisions_count
from consent_service.ledger.distinct_ids import distinct_id_claim
from consent_service.ledger.idempotency import IdempotencyClaim, idempotency_complete
from consent_service.ledger.identity import subject_for_write
from consent_service.ledger.models import ConsentRecord, ConsentState, LedgerHead, Subject
from consent_service.ledger.policies import policy_snapshot
from consent_service.ledger.records import Appended, Evidence, consent_record_append
from consent_service.ledger.selectors import (
    ConsentView,
    consent_payload,
    consent_view,
    subject_by_user,
    subject_by_visitor,
    subject_history,
    subject_purposes,
    undecided_purposes,
)
from consent_service.ledger.user_keys import user_key
from consent_service.ledger.visitor_consent import visitor_consent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CREATED = 201


@dataclass(frozen=True)
class Caller:
    """Who is asking: the browser's visitor id, the logged-in user, and the request's evidence."""

    visitor_id: str
    user: User | None
    evidence: Evidence


def subject_current(*, caller: Caller) -> Subject | None:
    """The caller's subject: the user's once logged in (the browser's anonymous history
    joined it at login), else the visitor's. A read: nothing is linked here."""
    if caller.user is not None:
        subject = subject_by_user(user_id=caller.user.pk)
        if subject is not None:
            return subject
    subject = subject_by_visitor(visitor_id=caller.visitor_id)
    if subject is not None and subject.user_id not in (None, getattr(caller.user, "pk", None)):
        return None  # another user's browser history: not this caller's
    return subject


def consent_history(*, caller: Caller) -> QuerySet[ConsentRecord]:
    """The caller's own records (and those merged into its subject), newest first."""
    subject = subject_current(caller=caller)
    return subject_history(subject) if subject is not None else ConsentRecord.objects.none()


def consent_current(*, caller: Caller) -> ConsentView:
    """The caller's effective consent. Sec-GPC: 1 reads as a refusal of what is undecided;
    nothing is written (a GET never writes): the refusal is recorded with the next write."""
    return consent_view(purposes=_stored_purposes(caller), gpc=caller.evidence.gpc)


def _stored_purposes(caller: Caller) -> dict[str, Any] | None:
    """From the cache when the visitor is the caller's (the usual case), else a read."""
    found = visitor_consent(visitor_id=caller.visitor_id)
    if caller.user is None or (found is not None and found.user_id == user_key(caller.user.pk)):
        return found.purposes if found else None
    subject = subject_current(caller=caller)
    state = getattr(subject, "state", None) if subject is not None else None
    return state.purposes if state is not None else None


@dataclass(frozen=True)
class Written:
    """A ledger write's result. `revoked`: the subject's analytics grant ended with it."""

    subject: Subject
    state: ConsentState
    revoked: bool


def policy_version_require(policy_version: str) -> None:
    """A decision names the version it was shown; an outdated one is refused (409)."""
    current = policy_snapshot().current_version
    if policy_version != current:
        raise StalePolicyVersion(
            f"Policy version {policy_version!r} is not current; the current one is {current!r}.",
            attr="policy_version",
            extra={"current_policy_version": current},
        )


def decision_write(
    *,
    head: LedgerHead,
    caller: Caller,
    choices: dict[str, bool],
    policy_version: str,
    source: str,
    distinct_id: str | None = None,
) -> Written:
    """Record the caller's decision. Call inside ledger_write()."""
    linked = subject_for_write(
        head=head, visitor_id=caller.visitor_id, user=caller.user, evidence=caller.evidence
    )
    subject = linked.subject
    if distinct_id:
        distinct_id_claim(subject_id=subject.pk, distinct_id=distinct_id)
    gpc = _record_gpc_refusal(head=head, subject=subject, caller=caller, deciding=choices)
    appended = consent_record_append(
        head=head,
        subject=subject,
        choices=choices,
        action=ConsentRecord.Action.DECIDE,
        source=source,
        policy_version=policy_version,
        evidence=caller.evidence,
    )
    _count_after_commit(choices, action=ConsentRecord.Action.DECIDE, source=source)
    revoked = linked.revoked or (gpc is not None and gpc.revoked) or appended.revoked
    return Written(subject, appended.state, revoked)


def withdrawal_write(*, head: LedgerHead, caller: Caller, source: str) -> Written:
    """Art. 7(3): one call refuses every purpose. Call inside ledger_write()."""
    linked = subject_for_write(
        head=head, visitor_id=caller.visitor_id, user=caller.user, evidence=caller.evidence
    )
    appended = subject_withdraw(
        head=head, subject=linked.subject, source=source, evidence=caller.evidence
    )
    return Written(linked.subject, appended.state, linked.revoked or appended.revoked)


def subject_withdraw(
    *, head: LedgerHead, subject: Subject, source: str, evidence: Evidence
) -> Appended:
    """Refuse every purpose for the subject. Call inside ledger_write()."""
    snapshot = policy_snapshot()
    choices = dict.fromkeys(snapshot.purposes, False)
    _count_after_commit(choices, action=ConsentRecord.Action.WITHDRAW, source=source)
    return consent_record_append(
        head=head,
        subject=subject,
        choices=choices,
        action=ConsentRecord.Action.WITHDRAW,
        source=source,
        policy_version=snapshot.current_version,
        evidence=evidence,
    )


def consent_body(
    *, state: ConsentState, caller: Caller, idempotency: IdempotencyClaim | None
) -> dict[str, Any]:
    """The API's answer to a write; stored for replays in the write's own transaction."""
    body = consent_payload(consent_view(purposes=state.purposes, gpc=caller.evidence.gpc))
    if idempotency is not None:
        idempotency_complete(claim=idempotency, status=CREATED, body=body)
    return body


def _record_gpc_refusal(
    *, head: LedgerHead, subject: Subject, caller: Caller, deciding: Iterable[str]
) -> Appended | None:
    """Sec-GPC: 1 refuses the purposes with no current decision that this write leaves out.
    Recorded with the visitor's write, never by a read. Call inside ledger_write()."""
    if not caller.evidence.gpc:
        return None
    view = consent_view(purposes=subject_purposes(subject), gpc=False)
    undecided = [key for key in undecided_purposes(view) if key not in set(deciding)]
    if not undecided:
        return None
    choices = dict.fromkeys(undecided, False)
    _count_after_commit(
        choices, action=ConsentRecord.Action.DECIDE, source=ConsentRecord.Source.GPC
    )
    return consent_record_append(
        head=head,
        subject=subject,
        choices=choices,
        action=ConsentRecord.Action.DECIDE,
        source=ConsentRecord.Source.GPC,
        policy_version=policy_snapshot().current_version,
        evidence=caller.evidence,
    )


def _count_after_commit(choices: dict[str, bool], *, action: str, source: str) -> None:
    """For /metrics, once the decision is committed: a rolled-back one was never made."""
    count = partial(consent_decisions_count, choices=dict(choices), action=action, source=source)
    transaction.on_commit(count)
