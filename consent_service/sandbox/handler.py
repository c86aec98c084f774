"""The HTTP/1.1 request handler: read, apply faults, dispatch, record, answer."""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from consent_service.sandbox.faults import Fault
from consent_service.sandbox.routes import dispatch, fault_response, is_control, with_cors
from consent_service.sandbox.state import Sandbox
from consent_service.sandbox.store import CapturedRequest
from consent_service.sandbox.wire import Request, Response, error_for_path

# Bodies are read whole before routing; past this the connection is answered 413 and closed.
MAX_BODY_BYTES = 64 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 300
RESET_LINGER = struct.pack("ii", 1, 0)  # close() then sends RST instead of FIN


class BodyError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class SandboxHTTPServer(ThreadingHTTPServer):
    """Keeps the sandbox state for its handlers and tracks open connections so `stop()`
    can end keep-alive threads instead of leaving them blocked on reads."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections under benchmark load

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, *, verbose: bool) -> None:
        self.sandbox = sandbox
        self.verbose = verbose
        self.connections = ConnectionSet()
        super().__init__(address, SandboxHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-answer is normal here (drops, timeouts, stop()).
        if self.verbose:
            super().handle_error(request, client_address)


class ConnectionSet:
    def __init__(self) -> None:
        self._sockets: set[socket.socket] = set()
        self._changed = threading.Condition()

    def add(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.add(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.discard(sock)
            self._changed.notify_all()

    def close_all(self, timeout: float) -> None:
        """Wake every handler blocked on a read, then wait for them to finish."""
        with self._changed:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._changed.wait_for(lambda: not self._sockets, timeout)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "posthog-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    timeout = IDLE_TIMEOUT_SECONDS
    server: SandboxHTTPServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        if self.server.verbose:
            sys.stderr.write(f"sandbox {self.address_string()} {format % args}\n")

    def _handle(self) -> None:
        generation = self.server.sandbox.store.generation
        path, _, query = self.path.partition("?")
        headers = _lowercase_headers(self.headers.items())
        fault = self._fault_for(path)
        if fault is not None and fault.drop:
            self._finish(Request(self.command, path, query, {}, headers, b"", generation), None)
            return
        try:
            body = self._read_body(headers)
        except BodyError as exc:
            self.close_connection = True
            response = error_for_path(path, exc.status, exc.code, exc.detail)
            self._finish(Request(self.command, path, query, {}, headers, b"", generation), response)
            return
        params, peer = _params(query), str(self.client_address[0])
        request = Request(self.command, path, query, params, headers, body, generation, peer)
        self._finish(request, with_cors(request, self._answer(request, fault)))

    def _fault_for(self, path: str) -> Fault | None:
        fault = None if is_control(path) else self.server.sandbox.faults.take(path)
        if fault is not None and fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        return fault

    def _finish(self, request: Request, response: Response | None) -> None:
        """Record, then answer; no response means reset the connection."""
        if not is_control(request.path):
            status = response.status if response else 0
            captured = CapturedRequest(
                request.method, request.path, request.query, request.headers, request.body, status
            )
            self.server.sandbox.store.add_request(captured, generation=request.generation)
        if response is None:
            self._reset()
        else:
            self._send(response)

    def _answer(self, request: Request, fault: Fault | None) -> Response:
        if fault is not None and fault.status is not None:
            return fault_response(fault, request.path)
        return dispatch(request, self.server.sandbox)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BodyError(400, "invalid_content_length", "Bad Content-Length.") from None
        if length < 0:
            raise BodyError(400, "invalid_content_length", "Bad Content-Length.")
        if length > MAX_BODY_BYTES:
            raise BodyError(413, "payload_too_large", "Request body is too large.")
        return self._read_exactly(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError(400, "invalid_chunk", "Bad chunked encoding.") from None
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise BodyError(413, "payload_too_large", "Request body is too large.")
            body += self._read_exactly(size)
            self.rfile.readline(8)
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return bytes(body)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size) if size else b""
        if len(data) != size:
            raise BodyError(400, "truncated_body", "Body ended early.")
        return data

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.body or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _reset(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_LINGER)
        self.connection.close()


def _lowercase_headers(items: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _params(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params
