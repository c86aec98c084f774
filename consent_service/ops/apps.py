from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What an operator's tooling asks: is it up (/healthz), can it serve (/readyz), how
    is it doing (/metrics)."""

    name = "consent_service.ops"
    label = "consent_ops"
    # Ours, not the host project\'s DEFAULT_AUTO_FIELD: the migrations we ship use it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Operations"

    def ready(self) -> None:
        from consent_service.ops import checks  # noqa: F401  (registers the system checks)
