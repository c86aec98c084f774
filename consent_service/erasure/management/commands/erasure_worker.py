from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consent_service.core.logs import log_context
from consent_service.core.workers import (
    close_stale_connections,
    round_log,
    stop_on_signals,
    worker_name,
)
from consent_service.erasure.services import (
    Processed,
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
            close_stale_connections()
            with log_context():  # the round's id is the request_id of its log lines
                started = time.perf_counter()
                claimed = erasure_claim(worker=worker, limit=options["batch"])
                processed = self._process(claimed, worker, stop)
                confirmed: list[Processed] = []
                overdue = 0
                if not claimed:
                    confirmed = erasure_confirm_due(worker=worker)  # no person may be left
                    overdue = erasure_report_overdue()  # between bursts: said once
                if processed or confirmed or overdue:
                    _log_round(processed, confirmed, overdue, started)
            rounds += len(processed)
            if claimed:
                continue
            if options["once"]:
                break
            stop.wait(options["idle"])
        self.stdout.write(f"erasure worker {worker}: {rounds} rounds processed")

    def _process(self, claimed: list[Any], worker: str, stop: threading.Event) -> list[Processed]:
        if stop.is_set():
            for request in claimed:
                erasure_release(request=request, worker=worker)  # no wait for the lease
            return []
        results = erasure_process(requests=claimed, worker=worker)
        for result in results:
            logger.debug(
                "erasure %s: %s (%s calls)", result.request_id, result.status, result.calls
            )
        return results


def _log_round(
    processed: list[Processed], confirmed: list[Processed], overdue: int, started: float
) -> None:
    statuses = Counter(result.status for result in processed + confirmed)
    round_log(
        logger,
        "erasure round: %(processed)d processed (%(succeeded)d succeeded, %(pending)d to "
        "retry, %(failed)d failed), %(confirmed)d confirmed, %(unconfirmed)d to look again, "
        "%(overdue)d reported overdue, %(calls)d PostHog calls",
        started=started,
        processed=len(processed),
        succeeded=statuses["succeeded"],
        pending=statuses["pending"] + statuses["in_progress"],
        failed=statuses["failed"],
        confirmed=statuses["confirmed"],
        unconfirmed=statuses["unconfirmed"],
        overdue=overdue,
        calls=sum(result.calls for result in processed + confirmed),
    )
