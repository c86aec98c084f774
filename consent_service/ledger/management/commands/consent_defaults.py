from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from consent_service.core.conf import conf
from consent_service.ledger.policies import policy_version_ensure, purposes_ensure_defaults


class Command(BaseCommand):
    help = "Create the default purposes and the configured policy version if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        purposes_ensure_defaults()
        policy = policy_version_ensure(version=conf().policy_version)
        self.stdout.write(f"purposes ready; current policy version {policy.version!r}")
