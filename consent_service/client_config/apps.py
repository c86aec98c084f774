from __future__ import annotations

from django.apps import AppConfig


class ClientConfigConfig(AppConfig):
    name = "consent_service.client_config"
    label = "client_config"
