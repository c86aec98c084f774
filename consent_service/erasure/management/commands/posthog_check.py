"""`manage.py posthog_check`: can erasure reach PostHog's persons API? Exit 1 if not."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from consent_service.erasure.posthog_check import posthog_check_run


class Command(BaseCommand):
    help = "Check over the network that the personal API key can read the project's persons."

    def handle(self, *args: Any, **options: Any) -> None:
        check = posthog_check_run()
        if not check.ok:
            raise CommandError(f"PostHog check failed: {check.detail}")
        self.stdout.write(self.style.SUCCESS(f"PostHog check passed: {check.detail}"))
