from __future__ import annotations

from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "consent_service.erasure"
    label = "erasure"
    # Ours, not the host project\'s DEFAULT_AUTO_FIELD: the migrations we ship use it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Erasure (GDPR Art. 17)"
