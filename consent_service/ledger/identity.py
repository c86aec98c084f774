"""Subjects and their identifiers: creation, login linking, distinct_id binding.

A user's subject gets its identified distinct_id (see identified_ids.py) whenever it is
written or linked, so the config can hand it to posthog-js from then on.

Functions taking `head` run inside `ledger_write()`, so they are serialised with
every other ledger write and need no locks of their own. A link can revoke (a newer
anonymous refusal carried over the user's grant): `Linked.revoked` says so, and the
caller above the ledger applies what a revocation means.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consent_service.ledger.identified_ids import identified_id_ensure, subject_is_external
from consent_service.ledger.models import ConsentRecord, LedgerHead, Subject
from consent_service.ledger.models import SubjectIdentifier as Identifier
from consent_service.ledger.records import Evidence, consent_record_append
from consent_service.ledger.selectors import subject_purposes
from consent_service.ledger.visitor_consent import visitor_consent_refresh

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class Linked:
    subject: Subject
    revoked: bool  # a merge carried a refusal over the subject's analytics grant


def subject_for_write(
    *, head: LedgerHead, visitor_id: str, user: User | None, evidence: Evidence
) -> Linked:
    linked = _linked_subject(head=head, visitor_id=visitor_id, user=user, evidence=evidence)
    if linked is None:
        subject = Subject.objects.create(user=user)
        Identifier.objects.create(subject=subject, kind=Identifier.Kind.VISITOR, value=visitor_id)
        linked = Linked(subject, revoked=False)
    identified_id_ensure(subject=linked.subject)
    return linked


def subject_link_needed(*, visitor_id: str, user: User) -> bool:
    """A read, so a login with nothing to link takes no lock."""
    return _visitor_subject(visitor_id) is not None or Subject.objects.filter(user=user).exists()


def subject_link_user(
    *, head: LedgerHead, visitor_id: str, user: User, evidence: Evidence
) -> Linked | None:
    """At login: the visitor's anonymous history joins the user's subject."""
    linked = _linked_subject(head=head, visitor_id=visitor_id, user=user, evidence=evidence)
    if linked is not None:
        identified_id_ensure(subject=linked.subject)
        visitor_consent_refresh(subject_id=linked.subject.pk)
    return linked


def external_user_key(*, site: str, user_id: str) -> str:
    """What the ledger keeps of a host app's user: a digest to find their subject by. The
    id PostHog sees is minted (identified_ids.py), so the user id itself is not needed."""
    return hashlib.sha256(f"{site}\n{user_id}".encode()).hexdigest()


def subject_link_external_user(
    *, head: LedgerHead, visitor_id: str, external_key: str, evidence: Evidence
) -> Linked:
    """A signed identity from the host app: as at a Django login, the visitor's anonymous
    history joins the user's subject (created now if the user is new). A visitor subject
    that is another person's (a Django user's, another host app user's) is left as it is."""
    visitor_subject = _visitor_subject(visitor_id)
    user_subject = _external_subject(external_key)
    linked = None
    if user_subject is None:
        if visitor_subject is not None and _anonymous(visitor_subject):
            user_subject = visitor_subject  # the visitor's own history becomes the user's
        else:
            user_subject = Subject.objects.create()
        Identifier.objects.create(
            subject=user_subject, kind=Identifier.Kind.EXTERNAL_USER, value=external_key
        )
    if visitor_subject == user_subject:
        linked = Linked(user_subject, revoked=False)
    else:
        _bind_visitor(visitor_id, user_subject)
        revoked = False
        if visitor_subject is not None and _anonymous(visitor_subject):
            revoked = _merge(head, visitor_subject, user_subject, evidence)
        linked = Linked(user_subject, revoked)
    identified_id_ensure(subject=linked.subject)
    visitor_consent_refresh(subject_id=linked.subject.pk)
    return linked


def _external_subject(external_key: str) -> Subject | None:
    identifier = (
        Identifier.objects.select_related("subject")
        .filter(kind=Identifier.Kind.EXTERNAL_USER, value=external_key)
        .first()
    )
    return identifier.subject if identifier else None


def _anonymous(subject: Subject) -> bool:
    """Nobody's browsing history yet: neither a Django user's nor a host app user's."""
    return subject.user_id is None and not subject_is_external(subject_id=subject.pk)


def _visitor_subject(visitor_id: str) -> Subject | None:
    identifier = (
        Identifier.objects.select_related("subject")
        .filter(kind=Identifier.Kind.VISITOR, value=visitor_id)
        .first()
    )
    return identifier.subject if identifier else None


def _linked_subject(
    *, head: LedgerHead, visitor_id: str, user: User | None, evidence: Evidence
) -> Linked | None:
    visitor_subject = _visitor_subject(visitor_id)
    if user is None:
        return _unrevoked(visitor_subject)
    user_subject = Subject.objects.filter(user=user).first()
    if visitor_subject is not None and user_subject == visitor_subject:
        return _unrevoked(visitor_subject)
    if visitor_subject is None:
        if user_subject is not None:
            _bind_visitor(visitor_id, user_subject)
        return _unrevoked(user_subject)
    if user_subject is None:
        if visitor_subject.user_id is None:
            visitor_subject.user = user
            visitor_subject.save(update_fields=["user"])
            return _unrevoked(visitor_subject)
        user_subject = Subject.objects.create(user=user)
    _bind_visitor(visitor_id, user_subject)
    revoked = False
    if visitor_subject.user_id is None:  # anonymous browsing before this login
        revoked = _merge(head, visitor_subject, user_subject, evidence)
    return Linked(user_subject, revoked)


def _unrevoked(subject: Subject | None) -> Linked | None:
    return Linked(subject, revoked=False) if subject is not None else None


def _bind_visitor(visitor_id: str, subject: Subject) -> None:
    Identifier.objects.update_or_create(
        kind=Identifier.Kind.VISITOR, value=visitor_id, defaults={"subject": subject}
    )


def _merge(head: LedgerHead, source: Subject, target: Subject, evidence: Evidence) -> bool:
    """Link an anonymous subject into a user's; both histories stay where they are.
    True when the carried decisions revoke the user's analytics grant."""
    Identifier.objects.filter(subject=source, kind=Identifier.Kind.DISTINCT_ID).update(
        subject=target
    )
    source.merged_into = target
    source.save(update_fields=["merged_into"])
    carried = _newer_explicit_entries(source, target)
    if not carried:
        return False
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
    return appended.revoked


def _newer_explicit_entries(source: Subject, target: Subject) -> dict[str, dict[str, Any]]:
    """The source's explicit decisions, if they are more recent than the target's."""
    source_entries = _explicit_entries(source)
    if not source_entries:
        return {}
    if _latest(source_entries) <= _latest(_explicit_entries(target)):
        return {}
    return source_entries


def _explicit_entries(subject: Subject) -> dict[str, dict[str, Any]]:
    return {
        key: entry
        for key, entry in subject_purposes(subject).items()
        if entry.get("source") != ConsentRecord.Source.GPC
    }


def _latest(entries: dict[str, dict[str, Any]]) -> datetime:
    return max(
        (datetime.fromisoformat(entry["decided_at"]) for entry in entries.values()),
        default=datetime.min.replace(tzinfo=UTC),
    )
