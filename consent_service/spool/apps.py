from __future__ import annotations

from django.apps import AppConfig


class SpoolConfig(AppConfig):
    """Events the proxy acknowledged and the forwarder has not delivered yet."""

    name = "consent_service.spool"
    label = "spool"
    # Ours, not the host project\'s DEFAULT_AUTO_FIELD: the migrations we ship use it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Event spool"
