"""gunicorn for consent-service: `gunicorn -c deploy/gunicorn.conf.py config.wsgi`.

Read from the environment (the systemd unit's EnvironmentFile): GUNICORN_BIND,
GUNICORN_WORKERS, LOG_FORMAT, LOG_LEVEL, CONSENT_TRUSTED_PROXIES, PROMETHEUS_MULTIPROC_DIR.
The access log has no client address, no query string, no user agent or referrer, and the
backend-SDK route's secret segment masked; LOG_FORMAT=json makes it JSON like the app's.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

# The conf file is loaded before the app: make the project importable from any cwd.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consent_service.core.logs import (  # noqa: E402
    LOG_FORMATS,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    loggable_path,
)

LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in LOG_FORMATS:
    raise RuntimeError(f"LOG_FORMAT must be 'text' or 'json', got {LOG_FORMAT!r}.")

bind = [os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"]
# sync: one request per process at a time; the proxy's upstream calls are bounded
# (CONSENT_PROXY_DEADLINE_SECONDS) and events are spooled, so no request waits long.
worker_class = "sync"
# The usual 2 x cores + 1: a worker waiting on the database or PostHog leaves the core to
# another. The cores this process may run on (a container's or systemd's CPU set).
workers = int(
    os.environ.get("GUNICORN_WORKERS", "").strip() or 2 * len(os.sched_getaffinity(0)) + 1
)
proc_name = "consent-service"
# gunicornc's control socket defaults to one path per user ($HOME/.gunicorn, read-only
# under the unit's ProtectHome): a second instance would fight over it. Signals do the same.
control_socket_disable = True

# A request still running after this is killed with its worker. Above the proxy's 10 s
# upstream deadline and an admin "Process now" (a few PostHog API calls of
# POSTHOG_API_TIMEOUT each); below the reverse proxy's read timeout (nginx 60 s), so the
# service answers, or fails, before the proxy gives up on it.
timeout = 30
# On HUP or TERM, requests in flight may finish for this long: as long as one may take.
# Below systemd's TimeoutStopSec (60 s in deploy/systemd/consent-web.service).
graceful_timeout = 30
# Ignored by sync workers (one request per connection). Were worker_class gthread, it must
# outlast the reverse proxy's idle upstream connections (nginx 60 s, Caddy 2 min) so the
# proxy closes them first: a POST sent on a connection gunicorn just closed is not retried.
keepalive = 125

# Behind the reverse proxy only those addresses may set X-Forwarded-Proto for gunicorn, the
# same ones the app believes X-Forwarded-For from. Empty: nobody.
forwarded_allow_ips = ",".join(
    str(ipaddress.ip_network(value.strip(), strict=False))
    for value in os.environ.get("CONSENT_TRUSTED_PROXIES", "").split(",")
    if value.strip()
)

# posthog-js request lines are short (path plus a few query parameters); the server route
# adds a 256-character secret at most. Browsers send ~20 headers; the reverse proxy adds a
# few. Each header may be 8 KiB: the site's own cookies come along on its origin.
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").strip().lower() or "info"

# gunicorn's "Invalid request from ip=<address>: ..." warning.
_CLIENT_ADDRESS = re.compile(r"\bip=\S+?(?=: |$)")


class _NoClientAddress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ip=" in message:
            record.msg, record.args = _CLIENT_ADDRESS.sub("ip=-", message), None
        return True


class ConsentLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the app's formats and an access line without the client."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter() if LOG_FORMAT == "json" else TextFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
                if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                    handler.addFilter(RequestIdFilter())
        if not any(isinstance(f, _NoClientAddress) for f in self.error_log.filters):
            self.error_log.addFilter(_NoClientAddress())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        status = int(status.split(None, 1)[0]) if isinstance(status, str) else status
        path = loggable_path(environ.get("PATH_INFO", ""))  # no query string
        duration_ms = round(request_time.total_seconds() * 1000, 2)
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        method = environ.get("REQUEST_METHOD", "-")
        self.access_log.info(
            "%s %s %s %.1fms",
            method,
            path,
            status,
            duration_ms,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "bytes": getattr(resp, "sent", None),
                "request_id": request_id,
            },
        )


logger_class = ConsentLogger


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: prometheus-client drops its live gauges (README "Metrics")."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
