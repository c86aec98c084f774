"""Signals from Django's auth: logging in links the browser's anonymous history to the
user; deleting a user erases them from PostHog. Both can revoke, so they call the erasure
layer's write paths.

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

from consent_service.erasure.revocation import erasure_for_deleted_user, visitor_link_at_login
from consent_service.ledger.http import caller_from_request


@receiver(pre_delete, sender=get_user_model(), dispatch_uid="consent_erase_deleted_user")
def erase_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    erasure_for_deleted_user(user_id=instance.pk)


@receiver(user_logged_in, dispatch_uid="consent_link_visitor_at_login")
def link_visitor_at_login(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """Here, on the login's own write, never inside a later GET. A browser without a
    visitor cookie yet gets one (the middleware sets it on the login's response)."""
    if request is None:
        return
    visitor_link_at_login(caller=caller_from_request(request, user=user))
