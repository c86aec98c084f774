"""Server-side PostHog events for the host app's backend, sent only with the user's consent.

    from consent_service import analytics
    analytics.capture_event(request.user, "order_paid", {"plan": "pro"})

Events go straight to POSTHOG_HOST through posthog-python, not through the /ph proxy:
these helpers are the consent gate. They send nothing unless the user's subject has a
current analytics grant, and never under a refused (withdrawn) distinct_id. They never
raise: a failed lookup or send is logged and returns False.

Which distinct_id: the user's identified id, the one the service minted and the config
gives posthog-js (which identifies with it), so server and browser events land on one
person. It is bound to the user's subject whenever that subject is written or linked at
login (migration 0006 minted one for the users before), so a user with a current grant has
one; should it be missing, nothing is sent. These helpers never mint one themselves: they
run inside the host app's transaction, which must not hold the ledger's lock.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.db import transaction
from posthog import Posthog

from consent_service.core.conf import conf
from consent_service.core.logs import log_hash
from consent_service.ledger.identified_ids import identified_id_of_subject
from consent_service.ledger.selectors import purposes_granted, user_purposes

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser | None

logger = logging.getLogger("consent_service.analytics")

ANALYTICS = "analytics"
TIMEOUT_SECONDS = 3.0  # a capture request; the SDK's 15 s would hold a worker's queue long
MAX_RETRIES = 2


class _Client:
    """One posthog-python client per process, built on first use from the current settings.

    Asynchronous (the SDK's own consumer thread) unless configure(sync_mode=True)."""

    def __init__(self) -> None:
        self._client: Posthog | None = None
        self._lock = threading.Lock()
        self._sync_mode = False
        self._atexit_registered = False
        setting_changed.connect(self._reset, weak=False)

    def get(self) -> Posthog:
        with self._lock:
            if self._client is None:
                self._client = self._build()
                if not self._atexit_registered:
                    atexit.register(shutdown)
                    self._atexit_registered = True
            return self._client

    def configure(self, *, sync_mode: bool) -> None:
        self.close(sync_mode=sync_mode)

    def close(self, *, sync_mode: bool | None = None) -> None:
        with self._lock:
            client, self._client = self._client, None
            if sync_mode is not None:
                self._sync_mode = sync_mode
        if client is not None:
            client.shutdown()  # flushes what is queued, then stops the consumer thread

    def _build(self) -> Posthog:
        settings = conf()
        return Posthog(
            settings.posthog_api_key,
            host=settings.posthog_host,
            sync_mode=self._sync_mode,
            timeout=TIMEOUT_SECONDS,
            max_retries=MAX_RETRIES,
            disable_geoip=True,
            enable_local_evaluation=False,
            enable_exception_autocapture=False,
            on_error=_log_send_error,
        )

    def _reset(self, **kwargs: Any) -> None:
        # override_settings in tests must reach a client built from the old settings.
        try:
            self.close()
        except Exception:
            logger.exception("analytics: shutting down the PostHog client failed")


_client = _Client()


def configure(*, sync_mode: bool = False) -> None:
    """Send each event in the calling thread (tests) or from the SDK's queue (default).
    Shuts down the current client; the next event builds one in the new mode."""
    _client.configure(sync_mode=sync_mode)


def shutdown() -> None:
    """Flush queued events and stop the SDK's thread. Registered with atexit on first use;
    safe to call more than once (a later event builds a new client)."""
    try:
        _client.close()
    except Exception:
        logger.exception("analytics: shutting down the PostHog client failed")


def capture_event(user: AnyUser, event: str, properties: Mapping[str, Any] | None = None) -> bool:
    """Capture `event` for a consenting user. True when it was queued (or, in sync mode,
    sent); False when consent, settings or an error kept it back."""
    return _send(
        user,
        f"capture {event!r}",
        lambda client, distinct_id: client.capture(
            event, distinct_id=distinct_id, properties=dict(properties or {})
        ),
    )


def identify_user(user: AnyUser, properties: Mapping[str, Any] | None = None) -> bool:
    """Set person properties on the user's PostHog person (a `$set` event; posthog-python has
    no identify()). By default only `is_staff`, so internal users can be filtered out:
    no name, email or username goes to PostHog unless the caller passes it."""
    values = {"is_staff": bool(getattr(user, "is_staff", False)), **(properties or {})}
    return _send(
        user,
        "identify",
        lambda client, distinct_id: client.set(distinct_id=distinct_id, properties=values),
    )


def user_distinct_id(user: AnyUser) -> str | None:
    """The distinct_id events for this user may be sent under, or None when none may be
    sent: no user, analytics off, no current analytics grant, no identified id (or the
    lookup failed, which is logged)."""
    if user is None or not user.is_authenticated or not conf().analytics_enabled:
        return None
    try:
        # A savepoint: a failed query leaves the caller's own transaction usable.
        with transaction.atomic():
            return _consented_distinct_id(user.pk)
    except Exception:
        logger.exception("analytics: reading the consent of user %s failed", log_hash(user.pk))
        return None


def _send(user: AnyUser, what: str, call: Callable[[Posthog, str], str | None]) -> bool:
    distinct_id = user_distinct_id(user)
    if distinct_id is None:
        return False
    try:
        sent = call(_client.get(), distinct_id) is not None
    except Exception:
        logger.exception("analytics: %s failed", what)
        return False
    if not sent:
        logger.warning("analytics: %s was not sent (see the posthog logger)", what)
    return sent


def _consented_distinct_id(user_pk: Any) -> str | None:
    found = user_purposes(user_id=user_pk)
    if found is None:
        return None
    subject_id, purposes = found
    if ANALYTICS not in purposes_granted(purposes):
        return None
    identified = identified_id_of_subject(subject_id=subject_id)
    if identified is None:
        logger.warning(
            "analytics: user %s has no identified distinct_id; not sent", log_hash(user_pk)
        )
    return identified


def _log_send_error(error: Exception, batch: list[dict[str, Any]]) -> None:
    logger.warning("analytics: PostHog did not take %d event(s): %s", len(batch), error)
