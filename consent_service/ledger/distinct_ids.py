"""PostHog distinct_ids bound to subjects: what erasure deletes and the proxy checks."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from django.utils import timezone

from consent_service.core.cache import consent_cache
from consent_service.core.conf import conf
from consent_service.core.exceptions import DistinctIdTaken, InvalidDistinctId
from consent_service.ledger.identified_ids import distinct_id_is_minted
from consent_service.ledger.models import Subject, SubjectIdentifier
from consent_service.ledger.visitor_consent import distinct_ids_forget, visitor_consent_refresh

logger = logging.getLogger("consent_service.ledger")

DISTINCT_ID = SubjectIdentifier.Kind.DISTINCT_ID
MAX_DISTINCT_IDS_PER_SUBJECT = 100  # live ids: refused (erased) ones stop counting
LIMIT_LOG_SECONDS = 24 * 3600
# posthog-js anonymous distinct_ids and device ids are UUIDv7, lower case.
_ANONYMOUS_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
COOKIELESS_ID = "$posthog_cookieless"  # posthog-js's sentinel, replaced by PostHog per visit
# Values SDKs send when an app passes an unset variable; binding them would merge strangers.
PLACEHOLDER_DISTINCT_IDS = frozenset(
    {
        "",
        "0",
        "-1",
        "anonymous",
        "null",
        "undefined",
        "none",
        "nan",
        "[object object]",
        "guest",
        "true",
        "false",
        "distinct_id",
        "id",
        "not_authenticated",
        "email",
        COOKIELESS_ID,
    }
)


def distinct_id_is_valid(value: str) -> bool:
    return 0 < len(value) <= 200 and value.strip().lower() not in PLACEHOLDER_DISTINCT_IDS


def distinct_id_is_anonymous(value: str) -> bool:
    """Shaped like an id posthog-js made up itself: random, so nobody else's."""
    return bool(_ANONYMOUS_ID.match(value))


def distinct_id_claimable(value: str) -> bool:
    """May a browser bind this unbound id to itself? Guessable ids (emails, user pks)
    must not be, or a stranger could claim someone's id before they do. Minted ids never
    are, whatever the trust setting: the service binds them itself."""
    if not distinct_id_is_valid(value) or distinct_id_is_minted(value):
        return False
    return distinct_id_is_anonymous(value) or conf().trust_client_distinct_ids


def distinct_id_claim(*, subject_id: int, distinct_id: str) -> None:
    """A browser names `distinct_id` as its own (the consent POST): fine if it is already
    the subject's, bound to the subject if it is unbound and claimable, refused otherwise.
    Call inside ledger_write(): raising there rolls back the whole write."""
    owner = (
        SubjectIdentifier.objects.filter(kind=DISTINCT_ID, value=distinct_id)
        .values_list("subject_id", flat=True)
        .first()
    )
    if owner == subject_id:
        return  # its own, refused or not: nothing to change
    if owner is not None:
        raise DistinctIdTaken("This distinct_id belongs to another person.", attr="distinct_id")
    if not distinct_id_claimable(distinct_id):
        raise InvalidDistinctId(
            "Only posthog-js anonymous ids (UUIDv7) can be claimed; a user's identified id "
            "is the one the config gives.",
            attr="distinct_id",
        )
    distinct_ids_bind(subject_id=subject_id, distinct_ids=[distinct_id])


def distinct_ids_bind(*, subject_id: int, distinct_ids: Iterable[str]) -> set[str]:
    """Bind unbound, valid ids to the subject, up to its cap of live ids. An id bound
    elsewhere never moves, and a minted-looking one is never bound here (only
    identified_id_ensure() mints). Returns which of `distinct_ids` are now the subject's."""
    wanted = [
        value
        for value in dict.fromkeys(distinct_ids)
        if distinct_id_is_valid(value) and not distinct_id_is_minted(value)
    ]
    if not wanted:
        return set()
    mine = SubjectIdentifier.objects.filter(subject_id=subject_id, kind=DISTINCT_ID)
    taken = set(
        SubjectIdentifier.objects.filter(kind=DISTINCT_ID, value__in=wanted).values_list(
            "value", flat=True
        )
    )
    room = MAX_DISTINCT_IDS_PER_SUBJECT - mine.filter(refused_at__isnull=True).count()
    unbound = [value for value in wanted if value not in taken]
    new = unbound[: max(room, 0)]
    if len(new) < len(unbound):
        _log_limit_once(subject_id)
    if new:
        SubjectIdentifier.objects.bulk_create(
            [SubjectIdentifier(subject_id=subject_id, kind=DISTINCT_ID, value=v) for v in new],
            ignore_conflicts=True,  # a concurrent request may bind one first: checked below
        )
        distinct_ids_forget(distinct_ids=new)
        visitor_consent_refresh(subject_id=subject_id)
    return set(mine.filter(value__in=wanted).values_list("value", flat=True))


def _log_limit_once(subject_id: int) -> None:
    """An id we cannot bind is one erasure could not find: its events are dropped."""
    if consent_cache().add(f"consent:id-limit-logged:{subject_id}", 1, LIMIT_LOG_SECONDS):
        logger.error(
            "subject %s is at its limit of %s live distinct_ids: events naming more are dropped",
            subject_id,
            MAX_DISTINCT_IDS_PER_SUBJECT,
        )


def distinct_ids_refuse(*, subject: Subject) -> int:
    """Withdrawal: the subject's PostHog ids are refused by the proxy from now on."""
    refused = SubjectIdentifier.objects.filter(
        subject=subject, kind=DISTINCT_ID, refused_at__isnull=True
    ).update(refused_at=timezone.now())
    return refused
