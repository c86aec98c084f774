from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consent_service.sandbox.server import SandboxServer


class Command(BaseCommand):
    help = "Serve the PostHog sandbox upstream in the foreground until SIGINT or SIGTERM."
    requires_system_checks: list[str] = []  # needs no database, so checks would only slow it

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8010)
        parser.add_argument("--personal-api-key", default="phx_sandbox")
        parser.add_argument("--project-id", default="1")
        parser.add_argument(
            "--project-token", default=None, help="Refuse capture with any other token (403)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        server = SandboxServer(
            host=options["host"],
            port=options["port"],
            personal_api_key=options["personal_api_key"],
            project_id=options["project_id"],
            project_token=options["project_token"],
            verbose=options["verbosity"] >= 2,
        )
        stopping = threading.Event()
        previous = {sig: signal.signal(sig, _setter(stopping)) for sig in _STOP_SIGNALS}
        server.start()
        try:
            self.stdout.write(
                f"PostHog sandbox listening on {server.url} (inspect {server.url}/_sandbox/)"
            )
            self.stdout.flush()
            while not stopping.wait(0.5):
                pass
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("PostHog sandbox stopped")


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _setter(event: threading.Event) -> Callable[[int, FrameType | None], None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        event.set()

    return stop
