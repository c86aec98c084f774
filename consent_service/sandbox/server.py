"""SandboxServer: the PostHog-compatible upstream, served from a background thread.

server = SandboxServer(host="127.0.0.1", port=0).start()
...  # point clients at server.url; inspect server.store, script server.faults
server.stop()
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from consent_service.sandbox.faults import Faults
from consent_service.sandbox.handler import SandboxHTTPServer
from consent_service.sandbox.persons import Persons
from consent_service.sandbox.state import Sandbox
from consent_service.sandbox.static import DEFAULT_STATIC_ROOT
from consent_service.sandbox.store import Store

STOP_TIMEOUT_SECONDS = 5.0


class SandboxServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        personal_api_key: str = "phx_sandbox",
        project_id: str = "1",
        *,
        project_token: str | None = None,
        static_root: Path | None = DEFAULT_STATIC_ROOT,
        verbose: bool = False,
    ) -> None:
        """`project_token`: when set, capture with another token gets 403 (else any token).
        `verbose`: log each request to stderr."""
        self.host, self._port = host, port
        self.verbose = verbose
        self.store = Store()
        self.faults = Faults()
        self.persons = Persons(self.store)
        root = static_root if static_root is not None and static_root.is_dir() else None
        self.sandbox = Sandbox(
            store=self.store,
            faults=self.faults,
            persons=self.persons,
            personal_api_key=personal_api_key,
            project_id=project_id,
            project_token=project_token,
            static_root=root,
        )
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def flags(self) -> dict[str, bool | str]:
        """Flag key -> True/False or a variant name; edit in place to change answers."""
        return self.sandbox.flags

    @property
    def cookieless_hash_mode(self) -> bool:
        """The project's cookieless server hash mode; off, cookieless events are dropped."""
        return self.sandbox.cookieless_hash_mode

    @cookieless_hash_mode.setter
    def cookieless_hash_mode(self, enabled: bool) -> None:
        self.sandbox.cookieless_hash_mode = enabled

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            raise RuntimeError("the sandbox is already started")
        self._httpd = SandboxHTTPServer((self.host, self._port), self.sandbox, verbose=self.verbose)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"posthog-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket and every open connection."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        thread.join()
        httpd.server_close()
        httpd.connections.close_all(STOP_TIMEOUT_SECONDS)
        self._httpd = self._thread = None

    def reset(self) -> None:
        """Forget events, requests, persons, deletions and pending faults."""
        self.sandbox.reset()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
