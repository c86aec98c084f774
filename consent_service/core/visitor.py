"""The browser's identity: a random id in a signed, HttpOnly, SameSite=Lax cookie.

No database row exists for a visitor until they decide something, so bots and
one-page visits cost nothing but the cookie.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from django.core import signing
from django.http import HttpRequest, HttpResponseBase

from consent_service.core.conf import conf

SALT = "consent_service.visitor"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers keep a cookie
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")
_ATTR = "_consent_visitor"


@dataclass
class Visitor:
    id: str
    is_new: bool
    renew: bool = False


def new_visitor_id() -> str:
    return secrets.token_urlsafe(24)  # 192 bits from the CSPRNG, 32 characters


def visitor_for(request: HttpRequest) -> Visitor:
    """The request's visitor; a forged, expired or missing cookie means a new one."""
    cached: Visitor | None = getattr(request, _ATTR, None)
    if cached is not None:
        return cached
    existing = existing_visitor_id(request)
    if existing is not None:
        visitor = Visitor(id=existing, is_new=False)
    else:
        visitor = Visitor(id=new_visitor_id(), is_new=True)
    setattr(request, _ATTR, visitor)
    return visitor


def rotate_visitor(request: HttpRequest) -> None:
    """Start a new visitor: after logout the browser may be someone else's (a shared
    computer), so it must not keep the last user's consent."""
    setattr(request, _ATTR, Visitor(id=new_visitor_id(), is_new=True))


def renew_visitor_cookie(request: HttpRequest) -> None:
    visitor_for(request).renew = True


def apply_visitor_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    visitor: Visitor | None = getattr(request, _ATTR, None)
    if visitor is None or not (visitor.is_new or visitor.renew):
        return
    response.set_signed_cookie(
        conf().visitor_cookie_name,
        visitor.id,
        salt=SALT,
        max_age=COOKIE_MAX_AGE,
        secure=conf().visitor_cookie_secure,
        domain=conf().visitor_cookie_domain or None,  # host-only unless set
        httponly=True,
        samesite="Lax",
    )
    response.headers["Cache-Control"] = "private, no-store"


def existing_visitor_id(request: HttpRequest) -> str | None:
    """The visitor id if the request carries a valid cookie; never creates one."""
    name = conf().visitor_cookie_name
    cookie = request.COOKIES.get(name)
    if cookie is None:
        return None
    known = _verified.get(cookie)
    if known is not None and time.time() - known[1] <= COOKIE_MAX_AGE:
        return known[0]
    raw = request.get_signed_cookie(name, default=None, salt=SALT, max_age=COOKIE_MAX_AGE)
    if raw is None or not _ID_PATTERN.match(raw):
        return None
    _remember(cookie, raw)
    return raw


# Cookie values whose signature this process checked, with their signing time: the HMAC is
# a visible share of every proxied request, and a value that verified once always will
# (until it expires, checked here too, or the key changes, which restarts the process).
_verified: dict[str, tuple[str, int]] = {}
_VERIFIED_MAX = 50_000


def _remember(cookie: str, visitor_id: str) -> None:
    try:
        signed_at = signing.b62_decode(cookie.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        return
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[cookie] = (visitor_id, signed_at)
