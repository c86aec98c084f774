"""Signed identity: the host app's backend vouches for its user without a Django login.

Token format (version 1), for a user id sent beside it:

    token   = "v1." <issued_at> "." base64url(mac)      (no padding)
    mac     = HMAC-SHA256(secret, "v1\\n" <site> "\\n" <user_id> "\\n" <issued_at>)

`issued_at` is Unix time in whole seconds (decimal, no sign). `site` is
CONSENT_IDENTITY_SITE, so a token minted for one site is refused by another that shares the
secret. A user id is 1 to 128 characters of `A-Z a-z 0-9 . _ : @ + -`: no newline can shift
the fields the MAC covers. A token is refused past CONSENT_IDENTITY_MAX_AGE_SECONDS, or
when issued more than SKEW_SECONDS in the future. CONSENT_IDENTITY_SECRET_PREVIOUS is also
accepted, so a secret can be rotated without refusing tokens in flight.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from consent_service.core.conf import conf
from consent_service.core.exceptions import ServiceError

VERSION = "v1"
SKEW_SECONDS = 30  # clocks of the host app and this service may disagree a little
USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")
_TOKEN_PATTERN = re.compile(r"^v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


class IdentityDisabled(ServiceError):
    """No CONSENT_IDENTITY_SECRET: the endpoint does not exist on this deployment."""

    status_code = 404
    error_type = "not_found"
    code = "identity_disabled"


class IdentityMalformed(ServiceError):
    status_code = 400
    error_type = "validation_error"
    code = "identity_malformed"


class IdentitySignatureInvalid(ServiceError):
    status_code = 403
    error_type = "permission_error"
    code = "identity_signature_invalid"


class IdentityExpired(ServiceError):
    status_code = 403
    error_type = "permission_error"
    code = "identity_expired"


class IdentityFromFuture(ServiceError):
    status_code = 403
    error_type = "permission_error"
    code = "identity_issued_in_future"


@dataclass(frozen=True)
class SignedIdentity:
    user_id: str
    issued_at: int


def sign_identity(
    user_id: str,
    *,
    secret: str | None = None,
    site: str | None = None,
    issued_at: int | None = None,
) -> str:
    """The token for `user_id`, signed now with CONSENT_IDENTITY_SECRET (or `secret`).

    For a host app that runs this package; other backends follow the format above (README,
    "Signed identity")."""
    if not USER_ID_PATTERN.match(user_id):
        raise ValueError("user_id: 1 to 128 characters of A-Z a-z 0-9 . _ : @ + -")
    settings = conf()
    key = settings.identity_secret if secret is None else secret
    if not key:
        raise ValueError("CONSENT_IDENTITY_SECRET is not set")
    when = int(time.time()) if issued_at is None else issued_at
    where = settings.identity_site if site is None else site
    return f"{VERSION}.{when}.{_mac(key, where, user_id, when)}"


def identity_verify(*, user_id: str, token: str, now: float | None = None) -> SignedIdentity:
    """The identity the token vouches for, or the reason it does not."""
    settings = conf()
    if not settings.identity_secret:
        raise IdentityDisabled("Signed identity is not enabled on this service.")
    if not USER_ID_PATTERN.match(user_id):
        raise IdentityMalformed(
            "user_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ + -", attr="user_id"
        )
    match = _TOKEN_PATTERN.match(token)
    if match is None:
        raise IdentityMalformed(
            "signature must be v1.<issued_at>.<base64url HMAC-SHA256>", attr="signature"
        )
    issued_at = int(match.group(1))
    keys = [settings.identity_secret, settings.identity_secret_previous]
    expected = [_mac(key, settings.identity_site, user_id, issued_at) for key in keys if key]
    # Every key is compared, in constant time, whichever matches.
    if not sum(hmac.compare_digest(mac, match.group(2)) for mac in expected):
        raise IdentitySignatureInvalid("The signature does not match.", attr="signature")
    current = time.time() if now is None else now
    if issued_at > current + SKEW_SECONDS:
        raise IdentityFromFuture("The signature was issued in the future.", attr="signature")
    if current - issued_at > settings.identity_max_age_seconds:
        raise IdentityExpired("The signature has expired: sign a fresh one.", attr="signature")
    return SignedIdentity(user_id=user_id, issued_at=issued_at)


def _mac(secret: str, site: str, user_id: str, issued_at: int) -> str:
    message = f"{VERSION}\n{site}\n{user_id}\n{issued_at}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
