from __future__ import annotations

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "consent_service.sandbox"
    label = "sandbox"
    verbose_name = "PostHog sandbox upstream"
