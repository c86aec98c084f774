from __future__ import annotations

from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "consent_service.proxy"
    label = "proxy"
    # Ours, not the host project\'s DEFAULT_AUTO_FIELD: the migrations we ship use it.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consent_service.proxy import log_masking

        log_masking.install()
