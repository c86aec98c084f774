"""Signals from Django's auth: deleting a user erases them from PostHog; logging in links
the browser's anonymous history to the user.

A signal is the one hook that sees every deletion (admin, shell, the host app's own
code). pre_delete runs inside the deletion's transaction, before the user link is
cleared, so the ids are captured and a rolled-back deletion leaves no request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.http import HttpRequest

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.services import erasure_request_subject
from consent_service.ledger.http import caller_from_request
from consent_service.ledger.identity import subject_link_user
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


@receiver(user_logged_in, dispatch_uid="consent_link_visitor_at_login")
def link_visitor_at_login(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """Login links the browser's anonymous history to the user: here, on the login's own
    write, never inside a later GET. Lives above the ledger because a merge that carries a
    newer refusal over the user's grant queues an erasure. A browser without a visitor
    cookie yet gets one (the middleware sets it on the login's response)."""
    if request is None:
        return
    caller = caller_from_request(request, user=user)
    subject_link_user(visitor_id=caller.visitor_id, user=user, evidence=caller.evidence)
