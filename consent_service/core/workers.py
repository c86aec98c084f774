"""What the long-running commands (erasure_worker, proxy_forwarder) share."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from django.db import connections


def stop_on_signals() -> threading.Event:
    """Set by SIGTERM or SIGINT: the command finishes its round, then exits."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def worker_name(given: str) -> str:
    """The name in leases and audit trails: the one given, else host and pid."""
    return given or f"{socket.gethostname()}:{os.getpid()}"


def round_log(logger: logging.Logger, message: str, *, started: float, **counts: int | str) -> None:
    """One line for a round that did something: `message` takes the counts by name
    (`%(delivered)d`), which also become fields of the JSON line, with duration_ms. Run the
    round inside core.logs.log_context(): its id is the line's request_id."""
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    fields = {**counts, "duration_ms": duration_ms}
    logger.info(f"{message} in %(duration_ms).1fms", fields, extra=fields)


def close_stale_connections() -> None:
    """Django's close_old_connections for a loop between rounds, on every database the
    router may use; one inside a caller's transaction (a test calling the command) stays."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
