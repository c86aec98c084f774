"""Deleting a Django user erases them from PostHog.

A signal is the one hook that sees every deletion (admin, shell, the host app's own
code). pre_delete runs inside the deletion's transaction, before the user link is
cleared, so the ids are captured and a rolled-back deletion leaves no request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.services import erasure_request_subject
from consent_service.ledger.models import Subject


@receiver(pre_delete, sender=get_user_model(), dispatch_uid="consent_erase_deleted_user")
def erase_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    subject = Subject.objects.filter(user_id=instance.pk).first()
    if subject is None:
        return
    erasure_request_subject(
        subject=subject,
        reason=ErasureRequest.Reason.USER_DELETED,
        note=f"user {instance.pk} deleted",
    )
