from __future__ import annotations

import logging
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

from consent_service.core.workers import stop_on_signals, worker_name
from consent_service.erasure.services import (
    erasure_claim,
    erasure_confirm_due,
    erasure_process,
    erasure_release,
    erasure_report_overdue,
)

logger = logging.getLogger("consent_service.erasure")


class Command(BaseCommand):
    help = "Process erasure requests until stopped (--once: what is due now, then exit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain what is due and exit.")
        parser.add_argument("--batch", type=int, default=10, help="Requests claimed at a time.")
        parser.add_argument("--idle", type=float, default=2.0, help="Seconds to wait when idle.")
        parser.add_argument("--name", default="", help="Worker name in the audit trail.")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = stop_on_signals()
        worker = worker_name(options["name"])
        rounds = 0
        while not stop.is_set():
            if not connection.in_atomic_block:  # never inside a caller's transaction
                close_old_connections()
            claimed = erasure_claim(worker=worker, limit=options["batch"])
            rounds += self._process(claimed, worker, stop)
            if claimed:
                continue
            erasure_confirm_due(worker=worker)  # no person may be left after a deletion
            erasure_report_overdue()  # between bursts: a deadline passed is said once
            if options["once"]:
                break
            stop.wait(options["idle"])
        self.stdout.write(f"erasure worker {worker}: {rounds} rounds processed")

    def _process(self, claimed: list[Any], worker: str, stop: threading.Event) -> int:
        if stop.is_set():
            for request in claimed:
                erasure_release(request=request, worker=worker)  # no wait for the lease
            return 0
        results = erasure_process(requests=claimed, worker=worker)
        for result in results:
            logger.info("erasure %s: %s (%s calls)", result.request_id, result.status, result.calls)
        return len(results)
