"""Turns an HTTP request into the ledger's Caller: visitor cookie, user, evidence."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from consent_service.core.middleware import request_id
from consent_service.core.network import client_ip, truncate_ip
from consent_service.core.visitor import visitor_for
from consent_service.ledger.records import Evidence
from consent_service.ledger.services import Caller


def caller_from_request(request: HttpRequest, user: Any = None) -> Caller:
    """`user`: who just logged in (request.user is not set yet in user_logged_in)."""
    if user is None:
        user = request.user if request.user.is_authenticated else None
    evidence = Evidence(
        ip_truncated=truncate_ip(client_ip(request)),
        user_agent=request.headers.get("User-Agent", "")[:512],
        request_id=request_id(request),
        gpc=request.headers.get("Sec-GPC", "").strip() == "1",
    )
    return Caller(visitor_id=visitor_for(request).id, user=user, evidence=evidence)


# Set by POST /api/v1/identity/: the subject a signed identity linked in this browser
# session. Like Django's own login, it lasts as long as the session (or a DELETE).
EXTERNAL_SUBJECT_SESSION_KEY = "consent_external_subject"


def external_subject_from_request(request: HttpRequest) -> int | None:
    value = request.session.get(EXTERNAL_SUBJECT_SESSION_KEY)
    return value if isinstance(value, int) else None
