from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from consent_service.core.workers import stop_on_signals, worker_name
from consent_service.proxy.forwarder import dead_letters_cleanup, forward_round

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
            close_old_connections()
            result = forward_round(worker=worker, limit=options["batch"])
            delivered += result.delivered
            if result.requests:
                _log(result)
            if time.monotonic() - cleaned_at > CLEANUP_EVERY_SECONDS:
                dead_letters_cleanup()
                cleaned_at = time.monotonic()
            if result.requests >= options["batch"] and not result.retried:
                continue  # a full round: more is due at once
            # Otherwise wait: under load the next round then carries a bigger batch, so the
            # claim, the POST and the delete are paid per batch rather than per request.
            if options["once"]:
                break
            stop.wait(options["idle"])
        self.stdout.write(f"forwarder {worker}: {delivered} events delivered")


def _log(result: Any) -> None:
    logger.info(
        "forwarded %d requests: %d delivered, %d dead-lettered, dropped %s, %d to retry",
        result.requests,
        result.delivered,
        result.dead_lettered,
        dict(result.dropped) or "none",
        result.retried,
    )
