"""deploy/gunicorn.conf.py as shipped: gunicorn serving config.wsgi on loopback with
LOG_FORMAT=json. Every line it and the app write is JSON; the access and request lines hold
no client address and no query string, mask the server route's secret, and carry the id
the response's X-Request-ID names.

Skipped, with the reason, when gunicorn cannot start here.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
HOST = "127.0.0.1"
SECRET = "gunicorn-test-server-secret-0123"
SPOOFED = "203.0.113.9"

pytestmark = pytest.mark.skipif(
    not GUNICORN.exists() and shutil.which("gunicorn") is None,
    reason="gunicorn is not installed (make installs it into .venv)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Any:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@dataclass
class Server:
    port: int
    out: Path  # gunicorn's stdout: the access log
    err: Path  # its stderr: its error log and the app's log
    metrics: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def gunicorn(tmp_path) -> Iterator[Server]:
    """gunicorn -c deploy/gunicorn.conf.py config.wsgi, one worker, on a free port."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "gunicorn-test-secret-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS": HOST,
        "CONSENT_CACHE_DIR": str(tmp_path / "cache"),
        "CONSENT_RATE_LIMIT_DIR": str(tmp_path / "rates"),
        "CONSENT_PROXY_SERVER_SECRET": SECRET,
        "CONSENT_TRUSTED_PROXIES": "127.0.0.1/32",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "LOG_FORMAT": "json",
        "GUNICORN_BIND": f"{HOST}:{port}",
        "GUNICORN_WORKERS": "1",
    }
    (tmp_path / "metrics").mkdir()
    out, err = tmp_path / "access.log", tmp_path / "error.log"
    command = [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "config.wsgi"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.skip(f"gunicorn could not start ({process.returncode}): {err.read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex((HOST, port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.skip(f"gunicorn did not listen on {port}: {err.read_text()[-2000:]}")
            time.sleep(0.05)
        server = Server(port, out, err, tmp_path / "metrics", process)
        yield server
    finally:
        Server(port, out, err, tmp_path / "metrics", process).stop()


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_access_and_app_lines_are_json_without_address_query_or_secret(gunicorn):
    port, out, err = gunicorn.port, gunicorn.out, gunicorn.err

    spoofed = {"X-Forwarded-For": SPOOFED}
    health = request(port, "GET", "/healthz?email=ada%40example.com", headers=spoofed)
    server = request(port, "POST", f"/ph/server/{SECRET}/i/v1/analytics/events?v=1", b"{}")
    wrong = request(port, "GET", f"/ph/server/{SECRET}x/batch/")
    time.sleep(0.5)  # the worker writes its lines after the response

    access = json_lines(out)  # every line must parse
    app = json_lines(err)
    assert [(line["logger"], line["method"], line["path"], line["status"]) for line in access] == [
        ("gunicorn.access", "GET", "/healthz", 200),
        ("gunicorn.access", "POST", "/ph/server/***/i/v1/analytics/events", 400),
        ("gunicorn.access", "GET", "/ph/server/***/batch/", 404),
    ]
    ids = [health.getheader("X-Request-ID"), server.getheader("X-Request-ID")]
    ids.append(wrong.getheader("X-Request-ID"))
    assert [line["request_id"] for line in access] == ids
    assert all(isinstance(line["duration_ms"], float) for line in access)
    requests = [line for line in app if line["logger"] == "consent_service.request"]
    assert [(line["path"], line["status"], line["request_id"]) for line in requests] == [
        ("/healthz", 200, ids[0]),
        ("/ph/server/***/i/v1/analytics/events", 400, ids[1]),
        ("/ph/server/***/batch/", 404, ids[2]),
    ]
    warnings = [line for line in app if line["logger"] == "django.request"]
    assert [(line["message"], line["request_id"]) for line in warnings] == [
        ("Bad Request: /ph/server/***/i/v1/analytics/events", ids[1]),
        ("Not Found: /ph/server/***/batch/", ids[2]),
    ]
    logged = out.read_text() + err.read_text()
    assert SECRET not in logged
    assert "ada" not in logged and SPOOFED not in logged
    assert HOST not in out.read_text()  # the client address: not in any access line
    assert all(HOST not in json.dumps(line) for line in requests + warnings)


def test_a_malformed_request_is_logged_without_the_client_address(gunicorn):
    port, out, err = gunicorn.port, gunicorn.out, gunicorn.err

    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        answer = sock.recv(1024)
    time.sleep(0.5)

    assert answer.startswith(b"HTTP/1.1 400")
    [warning] = [line for line in json_lines(err) if "Invalid request" in line["message"]]
    assert warning["message"].startswith("Invalid request from ip=-: ")
    assert HOST not in out.read_text()


def test_a_worker_that_exits_is_marked_dead_for_prometheus(gunicorn):
    def booted() -> list[str]:
        return [
            line["message"] for line in json_lines(gunicorn.err) if "Booting" in line["message"]
        ]

    # The master listens before its worker has booted and said so.
    deadline = time.monotonic() + 15
    while not booted() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = booted()[0].rsplit(" ", 1)[1]
    # What prometheus-client writes for a live gauge of that worker; child_exit removes it.
    live = gunicorn.metrics / f"gauge_liveall_{pid}.db"
    live.write_bytes(b"")
    kept = gunicorn.metrics / f"counter_{pid}.db"
    kept.write_bytes(b"")

    gunicorn.stop()

    assert not live.exists()
    assert kept.exists()  # counters outlive the worker: they are summed
