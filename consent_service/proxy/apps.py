from __future__ import annotations

from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "consent_service.proxy"
    label = "proxy"
