from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consent_service.consent.receipts import ReceiptInvalid, ReceiptsUnavailable, receipt_verify


class Command(BaseCommand):
    help = (
        "Check a consent receipt file against this service's signing key and against the "
        "ledger record it names; exit 0 with one OK line, 1 with the reason."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The receipt as downloaded (JSON).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = Path(options["file"]).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {options['file']}: {error.strerror}") from error
        try:
            record = receipt_verify(data=data)
        except ReceiptsUnavailable as error:
            raise CommandError(f"cannot verify: {error.detail}") from error
        except ReceiptInvalid as error:
            raise CommandError(f"receipt invalid: {error}") from error
        self.stdout.write(
            f"OK: receipt {record.hash} is signed by this service and matches ledger record "
            f"#{record.seq} ({record.action}, {record.source}, {record.recorded_at.isoformat()})"
        )
