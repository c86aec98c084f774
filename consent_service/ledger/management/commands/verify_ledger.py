from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from consent_service.ledger.verification import ledger_verify


class Command(BaseCommand):
    help = "Recompute the consent records' hash chain; exit non-zero at the first break."

    def handle(self, *args: Any, **options: Any) -> None:
        result = ledger_verify()
        if result.first_break is not None:
            broken = result.first_break
            raise CommandError(
                f"ledger broken at record #{broken.seq} (id {broken.record_id}): "
                f"{broken.reason}; {result.checked} records verified before it"
            )
        self.stdout.write(f"ledger intact: {result.checked} records verified")
