"""Identified distinct_ids: minted by the service, never chosen by a browser.

A browser may claim only ids nobody else could know (posthog-js's anonymous UUIDv7s). An
id a page would pick for a user (its pk, an email) is guessable, so anyone could claim it
before its user does. So the service mints each user's identified id: an opaque random id
per user and generation, bound to the user's subject whenever that subject is written or
linked at login, and handed to posthog-js by the config. A withdrawal refuses it with the
subject's other ids; the subject's next write mints the next generation, so a person who
withdraws and grants again is not refused for ever.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consent_service.ledger.models import Subject, SubjectIdentifier
from consent_service.ledger.user_keys import user_key
from consent_service.ledger.visitor_consent import visitor_consent, visitor_consent_refresh

logger = logging.getLogger("consent_service.ledger")

DISTINCT_ID = SubjectIdentifier.Kind.DISTINCT_ID
# Never the shape of a posthog-js anonymous id (hex and hyphens only), so one glance tells
# a minted id from a claimed one; the random part is 192 bits from the CSPRNG.
IDENTIFIED_ID_PREFIX = "cs_"
_RANDOM_BYTES = 24


def distinct_id_is_minted(value: str) -> bool:
    """Shaped like an id this service mints: only the service may bind one."""
    return value.startswith(IDENTIFIED_ID_PREFIX)


def identified_id_current(*, distinct_ids: Mapping[str, bool]) -> str | None:
    """The live minted id among a subject's ids (id -> refused), e.g. a cached
    VisitorConsent's: at most one exists, as only identified_id_ensure() binds them."""
    live = sorted(value for value, refused in distinct_ids.items() if not refused)
    return next((value for value in live if distinct_id_is_minted(value)), None)


def identified_id_ensure(*, subject: Subject) -> str | None:
    """The user's live identified id, minted now if it has none (a new subject, or every
    id refused after a withdrawal). None for a subject with no user.

    Call inside ledger_write(): its lock serialises this check-then-insert, which keeps
    minted ids at one live per subject."""
    if subject.user_id is None and not subject_is_external(subject_id=subject.pk):
        return None
    current = identified_id_of_subject(subject_id=subject.pk)
    if current is not None:
        return current
    value = IDENTIFIED_ID_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    # Not through distinct_ids_bind(): the per-subject cap is for ids browsers send us.
    SubjectIdentifier.objects.create(subject=subject, kind=DISTINCT_ID, value=value)
    visitor_consent_refresh(subject_id=subject.pk)
    logger.info("minted an identified distinct_id for subject %s", subject.pk)
    return value


def subject_is_external(*, subject_id: int) -> bool:
    """The subject of a host app user who signed in with a signed identity."""
    return SubjectIdentifier.objects.filter(
        subject_id=subject_id, kind=SubjectIdentifier.Kind.EXTERNAL_USER
    ).exists()


def identified_id_of_subject(*, subject_id: int) -> str | None:
    """The subject's live minted id, read from the database (server-side helpers)."""
    values = SubjectIdentifier.objects.filter(
        subject_id=subject_id,
        kind=DISTINCT_ID,
        refused_at__isnull=True,
        value__startswith=IDENTIFIED_ID_PREFIX,
    ).values_list("value", flat=True)
    return identified_id_current(distinct_ids=dict.fromkeys(values, False))


@dataclass(frozen=True)
class VisitorIdentity:
    """What posthog-js should be told about identity, from the cached visitor consent."""

    identified_id: str | None  # the logged-in user's current minted id
    reset: bool  # every id posthog-js may still hold was refused: start a fresh identity


def visitor_identity(
    *, visitor_id: str, user_id: Any, external_subject_id: int | None = None
) -> VisitorIdentity:
    """No query once the visitor's consent is cached. `external_subject_id`: the subject a
    signed identity linked in this browser session (no Django user is logged in then)."""
    found = visitor_consent(visitor_id=visitor_id)
    ids = found.distinct_ids if found else {}
    current = identified_id_current(distinct_ids=ids)
    # Only the user the visitor is linked to gets it: never the next user of a shared browser.
    mine = found is not None and (
        (user_id is not None and found.user_id == user_key(user_id))
        or (
            user_id is None
            and external_subject_id is not None
            and found.user_id is None
            and found.subject_id == external_subject_id
        )
    )
    return VisitorIdentity(
        identified_id=current if mine else None, reset=_needs_reset(ids, current)
    )


def _needs_reset(distinct_ids: Mapping[str, bool], current: str | None) -> bool:
    # The id just minted is no reason to keep the old ones: posthog-js learns it from the
    # config, but its anonymous and device ids of before the withdrawal stay refused.
    held = [refused for value, refused in distinct_ids.items() if value != current]
    return bool(held) and all(held)
