from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consent_service.core.logs import log_context
from consent_service.core.workers import (
    close_stale_connections,
    round_log,
    stop_on_signals,
    worker_name,
)
from consent_service.proxy.drop_tallies import drops_flush
from consent_service.proxy.forwarder import Round, dead_letters_cleanup, forward_round

logger = logging.getLogger("consent_service.proxy.forwarder")
CLEANUP_EVERY_SECONDS = 3600.0


class Command(BaseCommand):
    help = "Deliver the spool to PostHog until stopped (--once: what is due now, then exit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain what is due and exit.")
        parser.add_argument("--batch", type=int, default=200, help="Requests claimed at a time.")
        parser.add_argument(
            "--idle",
            type=float,
            default=0.5,
            help="Seconds to wait after a round that was not full.",
        )
        parser.add_argument("--name", default="", help="Forwarder name, for leases and logs.")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = stop_on_signals()
        worker = worker_name(options["name"])
        delivered, cleaned_at = 0, 0.0
        while not stop.is_set():
            close_stale_connections()
            with log_context():  # the round's id is the request_id of its log lines
                started = time.perf_counter()
                result = forward_round(worker=worker, limit=options["batch"])
                expired = 0
                if time.monotonic() - cleaned_at > CLEANUP_EVERY_SECONDS:
                    expired = dead_letters_cleanup()
                    cleaned_at = time.monotonic()
                if result.requests or expired:
                    _log(result, expired, started)
            delivered += result.delivered
            if result.requests >= options["batch"] and not result.retried:
                continue  # a full round: more is due at once
            # Otherwise wait: under load the next round then carries a bigger batch, so the
            # claim, the POST and the delete are paid per batch rather than per request.
            if options["once"]:
                break
            stop.wait(options["idle"])
        drops_flush()  # what was dropped since the last write, before the process ends
        self.stdout.write(f"forwarder {worker}: {delivered} events delivered")


def _log(result: Round, expired: int, started: float) -> None:
    reasons = ",".join(f"{reason}={n}" for reason, n in sorted(result.dropped.items()))
    round_log(
        logger,
        "forwarder round: %(requests)d requests, %(delivered)d events delivered, "
        "%(dead_lettered)d dead-lettered, %(dropped)d dropped (%(dropped_reasons)s), "
        "%(retried)d requests to retry, %(expired)d old dead letters deleted",
        started=started,
        requests=result.requests,
        delivered=result.delivered,
        dead_lettered=result.dead_lettered,
        dropped=sum(result.dropped.values()),
        dropped_reasons=reasons or "none",
        retried=result.retried,
        expired=expired,
    )
