from __future__ import annotations

from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "consent_service.erasure"
    label = "erasure"
    verbose_name = "Erasure (GDPR Art. 17)"
