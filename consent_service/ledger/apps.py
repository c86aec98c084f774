from __future__ import annotations

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "consent_service.ledger"
    label = "ledger"
    # Ours, not the host project\'s DEFAULT_AUTO_FIELD: the migrations we ship use it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Consent ledger"
