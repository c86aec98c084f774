"""deploy/Caddyfile as shipped, run by Caddy on loopback (plain HTTP) in front of a header
echo server and in front of the service under gunicorn.

Skipped, with the reason, when Caddy is not installed (Debian: apt-get install caddy).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = ROOT / "deploy" / "Caddyfile"
HOST = "127.0.0.1"
SPOOFED = "203.0.113.9"

pytestmark = pytest.mark.skipif(
    shutil.which("caddy") is None, reason="caddy is not installed (apt-get install caddy)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"nothing listens on {port}:\n{log.read_text()[-3000:]}")


@contextmanager
def running(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        wait_for_port(port, process, log)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def caddy(tmp_path: Path, upstream: int) -> Iterator[int]:
    port = free_port()
    home = tmp_path / "caddy"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "CADDY_ADMIN": "off",
        "CONSENT_SITE": f"http://{HOST}:{port}",
        "CONSENT_UPSTREAM": f"{HOST}:{upstream}",
        "CONSENT_ACCESS_LOG": str(tmp_path / "access.log"),
        "CONSENT_STATIC_ROOT": str(tmp_path / "static"),
    }
    command = ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
    with running(command, env, port, tmp_path / "caddy.log"):
        yield port


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class EchoHandler(BaseHTTPRequestHandler):
    """Answers with the headers it received and the size of the body it read."""

    def do_GET(self) -> None:
        self._echo(b"")

    def do_POST(self) -> None:
        with contextlib.suppress(ConnectionError):  # Caddy cut an oversized body off
            self._echo(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _echo(self, body: bytes) -> None:
        seen = {"headers": dict(self.headers.items()), "body_bytes": len(body)}
        payload = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_behind_caddy(tmp_path) -> Iterator[int]:
    server = ThreadingHTTPServer((HOST, 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caddy(tmp_path, server.server_address[1]) as port:
            yield port
    finally:
        server.shutdown()
        server.server_close()


def test_forwarded_headers_are_the_proxys_own(echo_behind_caddy):
    spoofed = {
        "X-Forwarded-For": SPOOFED,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": f"for={SPOOFED};proto=https",
        "X-Real-IP": SPOOFED,
        "X_Forwarded_For": SPOOFED,
    }

    status, _, body = request(echo_behind_caddy, "GET", "/api/v1/consent/", headers=spoofed)

    seen = {name.lower(): value for name, value in json.loads(body)["headers"].items()}
    assert status == 200
    assert (seen["x-forwarded-for"], seen["x-forwarded-proto"]) == (HOST, "http")
    assert seen.get("x-forwarded-host") != "evil.example"
    assert [name for name in seen if name in {"forwarded", "x-real-ip"} or "_" in name] == []


def test_proxy_bodies_pass_up_to_the_services_limit(echo_behind_caddy):
    limit = 25 * 1024 * 1024

    status, _, body = request(echo_behind_caddy, "POST", "/ph/s/", body=b"x" * limit)
    too_big, _, _ = request(echo_behind_caddy, "POST", "/ph/s/", body=b"x" * (limit + 1))
    api_too_big, _, _ = request(echo_behind_caddy, "POST", "/api/v1/consent/", b"x" * 2**21)

    assert (status, json.loads(body)["body_bytes"]) == (200, limit)
    # Caddy stops reading at the cap and cuts the upstream request off; 2.6 (Debian 12)
    # then answers 502 rather than 413. The service's own 413 comes first for any body whose
    # Content-Length says it is too large.
    assert too_big in {413, 502}
    assert api_too_big in {413, 502}


def test_access_log_masks_the_server_route_secret(echo_behind_caddy, tmp_path):
    secret = "s3cret-server-route-segment"

    status, _, _ = request(
        echo_behind_caddy,
        "POST",
        f"/ph/server/{secret}/batch/?v=1",
        body=b"{}",
        headers={"Cookie": "consent_vid=private"},
    )

    log = (tmp_path / "access.log").read_text()
    assert status == 200
    assert secret not in log
    assert "consent_vid" not in log
    assert '"uri":"/ph/server/***/batch/?v=1"' in log
    assert '"remote_ip":"127.0.0.0"' in log


def test_static_files_are_served_from_static_root(echo_behind_caddy, tmp_path):
    (tmp_path / "static" / "consent_service").mkdir(parents=True)
    (tmp_path / "static" / "consent_service" / "consent.js").write_text("// consent.js")

    status, _, body = request(echo_behind_caddy, "GET", "/static/consent_service/consent.js")

    assert (status, body) == (200, b"// consent.js")  # from the directory, not the upstream


# --- the service itself ------------------------------------------------------------------


@pytest.fixture
def service_behind_caddy(tmp_path) -> Iterator[tuple[int, int, Path]]:
    """gunicorn serving config.wsgi on a fresh SQLite file, trusting loopback's proxy."""
    database = tmp_path / "db.sqlite3"
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "caddy-test-secret-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_SECURE_COOKIES": "0",  # plain HTTP on loopback
        "DJANGO_BEHIND_TLS_PROXY": "1",
        "CONSENT_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        "CONSENT_CACHE_DIR": str(tmp_path / "cache"),
        "CONSENT_RATE_LIMIT_DIR": str(tmp_path / "rates"),
        "LOG_LEVEL": "WARNING",
    }
    for command in (["migrate", "--noinput"], ["consent_defaults"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    app = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"{HOST}:{app}", "-w", "1"]
    with running(gunicorn, env, app, tmp_path / "gunicorn.log"), caddy(tmp_path, app) as port:
        yield port, app, database


def grant_analytics(port: int, headers: dict[str, str]) -> None:
    status, answer, _ = request(port, "GET", "/api/v1/analytics/config/", headers=headers)
    assert status == 200
    cookies = "; ".join(
        value.split(";", 1)[0] for name, value in answer.items() if name.lower() == "set-cookie"
    )
    csrf = next(c.split("=", 1)[1] for c in cookies.split("; ") if c.startswith("csrftoken="))
    body = json.dumps({"purposes": {"analytics": True}, "policy_version": "1"}).encode()
    write = {
        **headers,
        "Cookie": cookies,
        "X-CSRFToken": csrf,
        "Content-Type": "application/json",
        "Referer": f"http://{HOST}:{port}/",
    }
    status, _, reply = request(port, "POST", "/api/v1/consent/", body=body, headers=write)
    assert status == 201, reply


def recorded_ips(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT ip_truncated FROM ledger_consentevidence ORDER BY record_id")
        return [row[0] for row in rows]


def test_a_spoofed_forwarded_for_never_becomes_the_client_address(service_behind_caddy):
    port, app, database = service_behind_caddy
    spoofed = {"X-Forwarded-For": SPOOFED, "Host": f"{HOST}"}

    grant_analytics(port, spoofed)  # through Caddy
    grant_analytics(app, spoofed)  # straight to gunicorn: loopback is trusted, so it counts

    assert recorded_ips(database) == ["127.0.0.0", "203.0.113.0"]
