from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "consent_service.api"
    label = "consent_api"
