from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What an operator's tooling asks: is it up (/healthz), can it serve (/readyz)."""

    name = "consent_service.ops"
    label = "consent_ops"
    verbose_name = "Operations"
