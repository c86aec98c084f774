"""After erasure: personal context goes, the minimal consent proof stays (Art. 7(1), 17(3)).

Records chain only a salted digest of their evidence, so clearing the evidence (nonce
included) keeps `verify_ledger` passing and leaves nothing to guess the values from.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from consent_service.ledger.models import ConsentEvidence, Subject, SubjectIdentifier
from consent_service.ledger.visitor_consent import visitor_consent_refresh


def subject_pseudonymise(*, subject_id: int) -> None:
    now = timezone.now()
    subjects = Subject.objects.filter(Q(pk=subject_id) | Q(merged_into_id=subject_id))
    ConsentEvidence.objects.filter(record__subject__in=subjects).update(
        ip_truncated="", user_agent="", nonce="", pseudonymised_at=now
    )
    subjects.update(user=None, erased_at=now)
    # The host app user's digest goes like the user link: a later sign-in starts afresh.
    SubjectIdentifier.objects.filter(
        subject__in=subjects, kind=SubjectIdentifier.Kind.EXTERNAL_USER
    ).delete()
    visitor_consent_refresh(subject_id=subject_id)
