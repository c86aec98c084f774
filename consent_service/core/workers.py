"""What the long-running commands (erasure_worker, proxy_forwarder) share."""

from __future__ import annotations

import os
import signal
import socket
import threading


def stop_on_signals() -> threading.Event:
    """Set by SIGTERM or SIGINT: the command finishes its round, then exits."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def worker_name(given: str) -> str:
    """The name in leases and audit trails: the one given, else host and pid."""
    return given or f"{socket.gethostname()}:{os.getpid()}"
