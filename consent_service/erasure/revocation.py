"""What a revocation means, and the ledger writes that can cause one.

Erasure is the layer above the ledger. Each write path that can end a subject's analytics
grant (a consent POST, a withdrawal, a login that carries a newer refusal over, an erasure
asked for by staff or by deleting a user) calls its function here. It opens the ledger
write, lets the ledger record the change, and, when the ledger reports a revocation, calls
`revocation_apply` in that same transaction: the erasure request is an outbox row, so a
crash cannot keep the one without the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.outbox import erasure_request_create
from consent_service.ledger.distinct_ids import distinct_ids_refuse
from consent_service.ledger.idempotency import IdempotencyClaim
from consent_service.ledger.identity import (
    subject_link_external_user,
    subject_link_needed,
    subject_link_user,
)
from consent_service.ledger.records import Evidence, ledger_write
from consent_service.ledger.selectors import subject_by_user, subject_distinct_ids
from consent_service.ledger.services import (
    Caller,
    consent_body,
    decision_write,
    policy_version_require,
    subject_withdraw,
    withdrawal_write,
)
from consent_service.ledger.visitor_consent import visitor_consent_refresh
from consent_service.spool.store import spool_purge_subject

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from consent_service.ledger.models import Subject

Reason = ErasureRequest.Reason
STAFF_EVIDENCE = Evidence(ip_truncated="", user_agent="", request_id="", gpc=False)


def revocation_apply(
    *,
    subject: Subject,
    reason: str,
    requested_by: User | None = None,
    label: str = "",
    note: str = "",
    asked: bool = False,
) -> ErasureRequest | None:
    """Every effect of ending a subject's analytics consent. Call inside the ledger write
    that ended it.

    1. Its distinct_ids are refused: data may have reached PostHog under them, and PostHog
       cannot reuse a deleted id, so they never carry an event again.
    2. Its events still waiting in the spool are deleted unsent, with its dead letters.
    3. An erasure request is queued (or joins the one waiting) when an id may hold data,
       or always when erasure was asked for (`asked`).
    4. Every cache key of the subject is refreshed after commit, so neither the proxy nor
       the forwarder keeps sending under a refused id.
    """
    distinct_ids_refuse(subject=subject)
    spool_purge_subject(subject_id=subject.pk)
    request = None
    if asked or subject_distinct_ids(subject_id=subject.pk):
        request = erasure_request_create(
            subject=subject, reason=reason, requested_by=requested_by, label=label, note=note
        )
    visitor_consent_refresh(subject_id=subject.pk)
    return request


def consent_decide(
    *,
    caller: Caller,
    choices: dict[str, bool],
    policy_version: str,
    source: str,
    distinct_id: str | None = None,
    idempotency: IdempotencyClaim | None = None,
) -> dict[str, Any]:
    """The consent POST: record the decision; turning analytics off erases."""
    policy_version_require(policy_version)
    with ledger_write() as head:
        written = decision_write(
            head=head,
            caller=caller,
            choices=choices,
            policy_version=policy_version,
            source=source,
            distinct_id=distinct_id,
        )
        if written.revoked:
            revocation_apply(
                subject=written.subject,
                reason=Reason.REFUSAL,
                requested_by=caller.user,
                label=_who(caller),
            )
        return consent_body(state=written.state, caller=caller, idempotency=idempotency)


def consent_withdraw(
    *, caller: Caller, source: str, idempotency: IdempotencyClaim | None = None
) -> dict[str, Any]:
    """Art. 7(3): one call refuses every purpose, and erases what PostHog holds."""
    with ledger_write() as head:
        written = withdrawal_write(head=head, caller=caller, source=source)
        if written.revoked:
            revocation_apply(
                subject=written.subject,
                reason=Reason.WITHDRAWAL,
                requested_by=caller.user,
                label=_who(caller),
            )
        return consent_body(state=written.state, caller=caller, idempotency=idempotency)


def visitor_link_at_login(*, caller: Caller) -> None:
    """The browser's anonymous history joins the user who just logged in. A newer
    anonymous refusal carried over the user's grant covers the user's ids too."""
    user = caller.user
    if user is None or not subject_link_needed(visitor_id=caller.visitor_id, user=user):
        return  # nothing to link: no lock taken
    with ledger_write() as head:
        linked = subject_link_user(
            head=head, visitor_id=caller.visitor_id, user=user, evidence=caller.evidence
        )
        if linked is not None and linked.revoked:
            revocation_apply(subject=linked.subject, reason=Reason.REFUSAL, label="login")


def visitor_link_signed_identity(*, caller: Caller, external_key: str) -> int:
    """A signed identity from the host app links the browser as a Django login does (see
    visitor_link_at_login). Returns the user's subject id."""
    with ledger_write() as head:
        linked = subject_link_external_user(
            head=head,
            visitor_id=caller.visitor_id,
            external_key=external_key,
            evidence=caller.evidence,
        )
        if linked.revoked:
            revocation_apply(subject=linked.subject, reason=Reason.REFUSAL, label="identity")
        return linked.subject.pk


def erasure_request_subject(
    *, subject: Subject, reason: str, requested_by: User | None = None, note: str = ""
) -> ErasureRequest:
    """Art. 17 on request (admin, staff API, user deletion): withdraw all consent and
    erase, in one transaction, whether or not analytics was ever granted."""
    with ledger_write() as head:
        subject_withdraw(head=head, subject=subject, source="admin", evidence=STAFF_EVIDENCE)
        request = revocation_apply(
            subject=subject, reason=reason, requested_by=requested_by, note=note, asked=True
        )
        assert request is not None  # asked: always queued
        return request


def erasure_for_deleted_user(*, user_id: Any) -> ErasureRequest | None:
    """A Django user is being deleted: erase their subject, if they have one."""
    subject = subject_by_user(user_id=user_id)
    if subject is None:
        return None
    return erasure_request_subject(
        subject=subject, reason=Reason.USER_DELETED, note=f"user {user_id} deleted"
    )


def _who(caller: Caller) -> str:
    return f"user:{caller.user.pk}" if caller.user is not None else "visitor"
