"""Subjects and their identifiers: creation, login linking, distinct_id binding.

A user's subject gets its identified distinct_id (see identified_ids.py) whenever it is
written or linked, so the config can hand it to posthog-js from then on.

Functions taking `head` run inside `ledger_write()`, so they are serialised with
every other ledger write and need no locks of their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.outbox import erasure_request_create, subject_distinct_ids
from consent_service.ledger.identified_ids import identified_id_ensure
from consent_service.ledger.models import ConsentRecord, ConsentState, LedgerHead, Subject
from consent_service.ledger.models import SubjectIdentifier as Identifier
from consent_service.ledger.records import Evidence, consent_record_append, ledger_write
from consent_service.ledger.visitor_consent import visitor_consent_refresh

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def subject_for_write(
    *, head: LedgerHead, visitor_id: str, user: User | None, evidence: Evidence
) -> Subject:
    subject = _linked_subject(head=head, visitor_id=visitor_id, user=user, evidence=evidence)
    if subject is None:
        subject = Subject.objects.create(user=user)
        Identifier.objects.create(subject=subject, kind=Identifier.Kind.VISITOR, value=visitor_id)
    identified_id_ensure(subject=subject)
    return subject


def subject_link_user(*, visitor_id: str, user: User, evidence: Evidence) -> Subject | None:
    """Called at login (the user_logged_in receiver): the visitor joins the user."""
    visitor_subject = _visitor_subject(visitor_id)
    if visitor_subject is None and not Subject.objects.filter(user=user).exists():
        return None  # nothing to link yet: no lock taken on this read
    with ledger_write() as head:
        subject = _linked_subject(head=head, visitor_id=visitor_id, user=user, evidence=evidence)
        if subject is not None:
            identified_id_ensure(subject=subject)
            visitor_consent_refresh(subject_id=subject.pk)
        return subject


def _visitor_subject(visitor_id: str) -> Subject | None:
    identifier = (
        Identifier.objects.select_related("subject")
        .filter(kind=Identifier.Kind.VISITOR, value=visitor_id)
        .first()
    )
    return identifier.subject if identifier else None


def _linked_subject(
    *, head: LedgerHead, visitor_id: str, user: User | None, evidence: Evidence
) -> Subject | None:
    visitor_subject = _visitor_subject(visitor_id)
    if user is None:
        return visitor_subject
    user_subject = Subject.objects.filter(user=user).first()
    if visitor_subject is not None and user_subject == visitor_subject:
        return visitor_subject
    if visitor_subject is None:
        if user_subject is not None:
            _bind_visitor(visitor_id, user_subject)
        return user_subject
    if user_subject is None:
        if visitor_subject.user_id is None:
            visitor_subject.user = user
            visitor_subject.save(update_fields=["user"])
            return visitor_subject
        user_subject = Subject.objects.create(user=user)
    _bind_visitor(visitor_id, user_subject)
    if visitor_subject.user_id is None:  # anonymous browsing before this login
        _merge(head, visitor_subject, user_subject, evidence)
    return user_subject


def _bind_visitor(visitor_id: str, subject: Subject) -> None:
    Identifier.objects.update_or_create(
        kind=Identifier.Kind.VISITOR, value=visitor_id, defaults={"subject": subject}
    )


def _merge(head: LedgerHead, source: Subject, target: Subject, evidence: Evidence) -> None:
    """Link an anonymous subject into a user's; both histories stay where they are."""
    Identifier.objects.filter(subject=source, kind=Identifier.Kind.DISTINCT_ID).update(
        subject=target
    )
    source.merged_into = target
    source.save(update_fields=["merged_into"])
    carried = _newer_explicit_entries(source, target)
    if not carried:
        return
    latest = max(carried.values(), key=lambda entry: entry["decided_at"])
    appended = consent_record_append(
        head=head,
        subject=target,
        choices={key: bool(entry["granted"]) for key, entry in carried.items()},
        action=ConsentRecord.Action.DECIDE,
        source=ConsentRecord.Source.LOGIN,
        policy_version=latest["policy_version"],
        evidence=evidence,
        carried=carried,
    )
    if appended.revoked and subject_distinct_ids(target):
        # The user had granted; the newer anonymous refusal now covers their ids too.
        erasure_request_create(subject=target, reason=ErasureRequest.Reason.REFUSAL, label="login")


def _newer_explicit_entries(source: Subject, target: Subject) -> dict[str, dict[str, Any]]:
    """The source's explicit decisions, if they are more recent than the target's."""
    source_entries = _explicit_entries(source)
    if not source_entries:
        return {}
    if _latest(source_entries) <= _latest(_explicit_entries(target)):
        return {}
    return source_entries


def _explicit_entries(subject: Subject) -> dict[str, dict[str, Any]]:
    state = ConsentState.objects.filter(subject=subject).first()
    entries: dict[str, dict[str, Any]] = state.purposes if state else {}
    return {
        key: entry
        for key, entry in entries.items()
        if entry.get("source") != ConsentRecord.Source.GPC
    }


def _latest(entries: dict[str, dict[str, Any]]) -> datetime:
    return max(
        (datetime.fromisoformat(entry["decided_at"]) for entry in entries.values()),
        default=datetime.min.replace(tzinfo=UTC),
    )
