"""An upstream that misbehaves on purpose, on loopback: it drips its answer a byte at a time,
or answers a gzip bomb. The sandbox models PostHog; this models a broken network."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOMB = gzip.compress(b" " * (64 << 20), compresslevel=9)  # 64 MiB of spaces, ~64 KiB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.hits += 1
        if self.server.mode == "drip":
            self._drip(b'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{"status": 1}')
        else:
            self._bomb()

    do_GET = do_POST

    def _drip(self, data: bytes) -> None:
        for byte in data:
            if self.server.stopping.is_set():
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(self.server.drip_seconds)

    def _bomb(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(BOMB)))
        self.end_headers()
        self.wfile.write(BOMB)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str, drip_seconds: float) -> None:
        self.mode, self.drip_seconds, self.hits = mode, drip_seconds, 0
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def misbehaving(mode: str, *, drip_seconds: float = 0.2) -> Iterator[_Server]:
    """mode: "drip" (one byte every `drip_seconds`) or "bomb" (a gzip bomb)."""
    server = _Server(mode, drip_seconds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
