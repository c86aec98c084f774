from __future__ import annotations

from django.apps import AppConfig


class SpoolConfig(AppConfig):
    """Events the proxy acknowledged and the forwarder has not delivered yet."""

    name = "consent_service.spool"
    label = "spool"
    verbose_name = "Event spool"
