"""The proxy's deferred half, for benchmarks/proxy.py: the forwarder process it runs beside
gunicorn, and the spool it watches drain.

The forwarder is `manage.py proxy_forwarder` (default poll), started with gunicorn's
environment, so it reads the same settings and database. The spool is counted straight
from the benchmark process (`SELECT COUNT(*) FROM spool_request`) with sqlite3 or psycopg,
never through the service, so watching it costs the measured processes nothing.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url

from benchmarks.harness import REPO, BenchmarkError, log_tail, process_cpu_seconds, stop

SPOOL_TABLE = "spool_request"  # consent_service/spool/models.py SpooledRequest
DELIVERED = re.compile(r"forwarder (?P<name>\S+): (?P<events>\d+) events delivered")
POLL_SECONDS = 0.01


@dataclass
class Forwarder:
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the forwarder so far (it runs no child processes)."""
        return process_cpu_seconds([self.process.pid])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchmarkError(
                f"the forwarder exited with {self.process.returncode}:\n{log_tail(self.log_path)}"
            )

    def stop(self) -> int | None:
        """SIGTERM (the forwarder finishes its round and exits); returns the events it says
        it delivered, None when it did not say."""
        stop(self.process)
        found = DELIVERED.search(self.log_path.read_text(errors="replace"))
        return int(found["events"]) if found else None


@contextmanager
def forwarder(env: dict[str, str], log_path: Path) -> Iterator[Forwarder]:
    command = [sys.executable, "manage.py", "proxy_forwarder"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Forwarder(process, log_path)
    try:
        yield running
    finally:
        stop(process)


class SpoolCounter:
    """Counts the spooled requests waiting in the service's database."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        backend = env.get("CONSENT_SPOOL_BACKEND", "database").strip() or "database"
        if backend != "database":
            raise BenchmarkError(f"CONSENT_SPOOL_BACKEND={backend}: only the database is counted")
        engine = dj_database_url.parse(url)["ENGINE"]
        self._connection: Any
        if engine == "django.db.backends.sqlite3":
            name = str(dj_database_url.parse(url)["NAME"])
            self._connection = sqlite3.connect(name, timeout=20, isolation_level=None)
        elif engine == "django.db.backends.postgresql":
            import psycopg

            self._connection = psycopg.connect(url, autocommit=True)
        else:
            raise BenchmarkError(f"cannot count the spool in a {engine} database")

    def count(self) -> int:
        cursor = self._connection.execute(f"SELECT COUNT(*) FROM {SPOOL_TABLE}")
        row = cursor.fetchone()
        return int(row[0])

    def close(self) -> None:
        self._connection.close()


@dataclass
class Drain:
    """The spool once a load stopped."""

    depth: int  # spooled requests waiting when the load stopped
    seconds: float | None  # from the load's end until the spool was empty; None: not in time
    left: int  # requests still waiting when we stopped watching (0 once drained)


def wait_for_drain(
    spool: SpoolCounter, running: Forwarder, *, since: float, timeout: float
) -> Drain:
    """Watch the spool until it is empty; `since` is the load's end (time.perf_counter)."""
    depth = left = spool.count()
    while left:
        if time.perf_counter() - since > timeout:
            return Drain(depth, None, left)
        running.check_alive()
        time.sleep(POLL_SECONDS)
        left = spool.count()
    return Drain(depth, time.perf_counter() - since, 0)
