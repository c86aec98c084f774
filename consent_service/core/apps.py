from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "consent_service.core"
    label = "consent_core"

    def ready(self) -> None:
        from consent_service.core import checks, conf  # noqa: F401  (registers checks, receivers)
