"""Reads: subjects, their ids, and their effective consent derived from the stored state.
Other packages read ledger data through these, never through the models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from consent_service.core.conf import conf
from consent_service.ledger.models import (
    ConsentRecord,
    ConsentState,
    PolicyVersion,
    Purpose,
    Subject,
    SubjectIdentifier,
)
from consent_service.ledger.policies import PolicySnapshot, policy_snapshot


@dataclass(frozen=True)
class PurposeView:
    granted: bool
    choice: bool | None
    decided_at: datetime | None
    policy_version: str | None
    current: bool


@dataclass(frozen=True)
class ConsentView:
    purposes: dict[str, PurposeView]
    policy_version: str | None
    current_policy_version: str
    decided_at: datetime | None
    expires_at: datetime | None
    needs_prompt: bool
    gpc: bool

    def granted(self, purpose: str) -> bool:
        view = self.purposes.get(purpose)
        return view is not None and view.granted


def subject_by_user(*, user_id: Any) -> Subject | None:
    return Subject.objects.select_related("state").filter(user_id=user_id).first()


def subject_by_visitor(*, visitor_id: str) -> Subject | None:
    identifier = (
        SubjectIdentifier.objects.select_related("subject__state")
        .filter(kind=SubjectIdentifier.Kind.VISITOR, value=visitor_id)
        .first()
    )
    return identifier.subject if identifier else None


def subject_by_uuid(*, uuid: Any) -> Subject | None:
    return Subject.objects.filter(uuid=uuid).first()


def subject_by_distinct_id(*, distinct_id: str) -> Subject | None:
    identifier = (
        SubjectIdentifier.objects.select_related("subject")
        .filter(kind=SubjectIdentifier.Kind.DISTINCT_ID, value=distinct_id)
        .first()
    )
    return identifier.subject if identifier else None


def subjects_by_user(*, user_ids: Iterable[Any]) -> dict[Any, Subject]:
    return {s.user_id: s for s in Subject.objects.filter(user_id__in=list(user_ids))}


def subject_joined(subject: Subject) -> Subject:
    """The subject a merged one joined at login (its distinct_ids moved there), else itself."""
    while subject.merged_into is not None:
        subject = subject.merged_into
    return subject


def subject_merged(subject: Subject) -> QuerySet[Subject]:
    """The visitor subjects that joined this one at login, oldest first."""
    return Subject.objects.filter(merged_into=subject).order_by("pk")


def subject_purposes(subject: Subject) -> dict[str, Any]:
    """The subject's stored decisions, per purpose (empty before any)."""
    state = ConsentState.objects.filter(subject=subject).first()
    return dict(state.purposes) if state is not None else {}


def subject_distinct_ids(*, subject_id: int) -> list[str]:
    """Every distinct_id bound to the subject, refused ones included: all may hold data."""
    values = SubjectIdentifier.objects.filter(
        subject_id=subject_id, kind=SubjectIdentifier.Kind.DISTINCT_ID
    ).values_list("value", flat=True)
    return sorted(values)


def user_purposes(*, user_id: Any) -> tuple[int, dict[str, Any]] | None:
    """The user's subject id and its stored decisions, in one query (None: no decision)."""
    found: tuple[int, dict[str, Any]] | None = (
        ConsentState.objects.filter(subject__user_id=user_id)
        .values_list("subject_id", "purposes")
        .first()
    )
    return found


def consent_view(
    *, purposes: Mapping[str, Any] | None, gpc: bool, now: datetime | None = None
) -> ConsentView:
    now = now or timezone.now()
    snapshot = policy_snapshot()
    entries: Mapping[str, dict[str, Any]] = purposes or {}
    purposes = {key: _purpose_view(entries.get(key), snapshot, now) for key in snapshot.purposes}
    if gpc:  # Global Privacy Control refuses what has no current decision: derived, not stored
        refused = PurposeView(False, False, None, snapshot.current_version, current=True)
        purposes = {key: view if view.current else refused for key, view in purposes.items()}
    latest = max(entries.values(), key=lambda entry: entry["seq"], default=None)
    expiries = [
        view.decided_at + conf().max_age
        for view in purposes.values()
        if view.current and view.decided_at
    ]
    return ConsentView(
        purposes=purposes,
        policy_version=latest["policy_version"] if latest else None,
        current_policy_version=snapshot.current_version,
        decided_at=datetime.fromisoformat(latest["decided_at"]) if latest else None,
        expires_at=min(expiries, default=None),
        needs_prompt=not all(view.current for view in purposes.values()),
        gpc=gpc,
    )


def purposes_granted(purposes: Mapping[str, Any] | None) -> frozenset[str]:
    """The purposes with a current grant (not expired, not stale). On the proxy's hot
    path, so it skips building the whole view."""
    if not purposes:
        return frozenset()
    snapshot, now = policy_snapshot(), timezone.now()
    return frozenset(
        key
        for key in snapshot.purposes
        if (entry := purposes.get(key)) and _purpose_view(entry, snapshot, now).granted
    )


def undecided_purposes(view: ConsentView) -> list[str]:
    return [key for key, purpose in view.purposes.items() if not purpose.current]


def _purpose_view(
    entry: dict[str, Any] | None, snapshot: PolicySnapshot, now: datetime
) -> PurposeView:
    if entry is None:
        return PurposeView(False, None, None, None, current=False)
    decided_at = datetime.fromisoformat(entry["decided_at"])
    current = decided_at + conf().max_age > now and not snapshot.is_stale(entry["policy_version"])
    granted = bool(entry["granted"]) and current
    return PurposeView(
        granted, bool(entry["granted"]), decided_at, entry["policy_version"], current
    )


def consent_payload(view: ConsentView) -> dict[str, Any]:
    """The JSON the API returns (and an idempotent replay stores)."""
    return {
        "purposes": {
            key: {
                "granted": purpose.granted,
                "choice": purpose.choice,
                "decided_at": _iso(purpose.decided_at),
                "policy_version": purpose.policy_version,
                "current": purpose.current,
            }
            for key, purpose in view.purposes.items()
        },
        "policy_version": view.policy_version,
        "current_policy_version": view.current_policy_version,
        "decided_at": _iso(view.decided_at),
        "expires_at": _iso(view.expires_at),
        "needs_prompt": view.needs_prompt,
        "gpc": view.gpc,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def subject_history(subject: Subject) -> QuerySet[ConsentRecord]:
    """The subject's records and those of visitor subjects merged into it at login."""
    merged = subject_merged(subject).values("pk")
    return ConsentRecord.objects.filter(Q(subject=subject) | Q(subject__in=merged)).order_by("-seq")


def record_by_hash(*, record_hash: str) -> ConsentRecord | None:
    """A record by its chain hash (a consent receipt's id), whoever's it is."""
    return ConsentRecord.objects.select_related("subject").filter(hash=record_hash).first()


def policy_version_record(*, version: str) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(version=version).first()


# --- reports: aggregates per day, computed by the database --------------------------------


@dataclass(frozen=True)
class PurposeDay:
    day: date
    purpose: str
    decisions: int  # decisions that chose on the purpose
    granted: int  # of those, the ones that granted it


def purpose_keys() -> list[str]:
    """Every purpose, inactive ones too (their past decisions still count), in order."""
    return list(Purpose.objects.values_list("key", flat=True))


def consent_rates_by_day(*, since: datetime, purposes: Iterable[str]) -> list[PurposeDay]:
    """Per day and purpose, from `since`: decisions that chose on the purpose and how
    many granted it. One GROUP BY query. GPC refusals count (the visitor's browser
    decided); carries at login do not (nobody decided anything new)."""
    keys = list(purposes)
    # Each key is an alias, not a lookup path: a key such as "contains" or "a__b" stays a key.
    choices = {f"c{index}": KeyTransform(key, "choices") for index, key in enumerate(keys)}
    counts: dict[str, Any] = {}
    for index, key in enumerate(keys):
        counts[f"d{index}"] = Count("pk", filter=Q(choices__has_key=key))
        counts[f"g{index}"] = Count("pk", filter=Q(**{f"c{index}": True}))
    rows = (
        ConsentRecord.objects.filter(action=ConsentRecord.Action.DECIDE, recorded_at__gte=since)
        .exclude(source=ConsentRecord.Source.LOGIN)
        .alias(**choices)
        .annotate(day=TruncDate("recorded_at"))
        .values("day")
        .annotate(**counts)
        .order_by("day")
    )
    return [
        PurposeDay(row["day"], key, row[f"d{index}"], row[f"g{index}"])
        for row in cast(Iterable[dict[str, Any]], rows)
        for index, key in enumerate(keys)
        if row[f"d{index}"]
    ]


def withdrawals_by_day(*, since: datetime) -> list[tuple[date, int]]:
    """(day, withdrawals) from `since`: each is one "withdraw everything" record (the API's
    withdraw call, or an erasure asked for by staff)."""
    rows = (
        ConsentRecord.objects.filter(action=ConsentRecord.Action.WITHDRAW, recorded_at__gte=since)
        .annotate(day=TruncDate("recorded_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by("day")
    )
    return [(row["day"], row["n"]) for row in rows]
