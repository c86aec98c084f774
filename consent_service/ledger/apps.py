from __future__ import annotations

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "consent_service.ledger"
    label = "ledger"
    verbose_name = "Consent ledger"
