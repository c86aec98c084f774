from __future__ import annotations

from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "consent_service.proxy"
    label = "proxy"

    def ready(self) -> None:
        from consent_service.proxy import log_masking

        log_masking.install()
