from __future__ import annotations

from django.apps import AppConfig


class ConsentConfig(AppConfig):
    """The consent API and the auth signal receivers: the write paths that can revoke,
    above both the ledger and the erasure layer they join."""

    name = "consent_service.consent"
    label = "consent"
    verbose_name = "Consent API"

    def ready(self) -> None:
        from consent_service.consent import receivers  # noqa: F401  (login, user deletion)
