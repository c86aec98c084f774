"""Where a gated /ph/ request spends its time, in process, against the sandbox.

Run from the repository root:

    .venv/bin/python benchmarks/proxy_profile.py [--requests 1000]

It starts the sandbox (a subprocess, so its work stays out of this process), migrates a
fresh SQLite database, loads Django here with `benchmarks.settings` and the same environment
as benchmarks/proxy.py, records a consenting visitor and then calls the WSGI application
gunicorn serves in benchmarks/proxy.py (`benchmarks.wsgi`: config.wsgi with its /ph/ fast
path, plus the bare view without middleware; a gunicorn-like environ) one request at a time
with the same gzipped 5-event batch. The gated request answers once its events are in the
spool; no forwarder runs during 1 to 3, so the spool only grows there. It prints, per request:

1. CPU and wall time of each path (hello, bare, blind, gated), without any profiler;
2. the gated request split into stages by light timers wrapped around the proxy's own
   functions (middleware = whole request minus the view);
3. a cProfile of the gated path (its overhead inflates pure-Python code; read it for
   proportions);
4. the forwarder's deferred share: `forward_round` run here until the spool is empty,
   its CPU and wall per gated request spooled, split into claim, consent re-check, post
   (gzip + the sandbox round trip) and settle.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (  # noqa: E402
    CONFIG_PATH,
    CONSENT_PATH,
    HELLO_PATH,
    SETTINGS_MODULE,
    BenchmarkError,
    benchmark_env,
    cookie_header,
    database_url,
    migrate,
)
from benchmarks.proxy import (  # noqa: E402
    PATHS,
    Sandbox,
    capture_body,
    check_accepted,
    client_headers,
    sandbox,
    service_env,
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Wsgi:
    """Calls the WSGI application as gunicorn's sync worker would."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "50000",
            "RAW_URI": path,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_CONNECTION": "close",
        }
        if body:
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            else:
                environ[f"HTTP_{key}"] = value
        status: list[str] = []
        response_headers: list[tuple[str, str]] = []

        def start_response(line: str, items: list[tuple[str, str]], exc: Any = None) -> None:
            status.append(line)
            response_headers.extend(items)

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(status[0].split()[0]), response_headers, content


def cookies_from(headers: list[tuple[str, str]]) -> dict[str, str]:
    cookies = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.split(";", 1)[0].partition("=")
            cookies[key.strip()] = rest.strip()
    return cookies


def consenting_visitor(call: Wsgi) -> dict[str, str]:
    status, headers, body = call("GET", CONFIG_PATH, {})
    if status != 200:
        raise BenchmarkError(f"config GET: {status} {body[:200]!r}")
    cookies = cookies_from(headers)
    payload = b'{"purposes": {"analytics": true, "session_replay": true}, "policy_version": "1"}'
    status, headers, body = call(
        "POST",
        CONSENT_PATH,
        {
            "Content-Type": "application/json",
            "X-CSRFToken": cookies["csrftoken"],
            "Cookie": cookie_header(cookies),
        },
        payload,
    )
    if status != 201:
        raise BenchmarkError(f"consent POST: {status} {body[:200]!r}")
    cookies.update(cookies_from(headers))
    return cookies


# --- timers -------------------------------------------------------------------------------


class Timers:
    """perf_counter around named functions; nested stages are reported as they are."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.enabled = False

    def measure(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return function(*args, **kwargs)
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - began
            self.totals[name] = self.totals.get(name, 0.0) + elapsed
            self.counts[name] = self.counts.get(name, 0) + 1

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            return self.measure(name, original, *args, **kwargs)

        setattr(owner, attribute, timed)

    def per_request(self, name: str, requests: int) -> float:
        return self.totals.get(name, 0.0) / requests * 1e6

    def reset(self) -> None:
        self.totals.clear()
        self.counts.clear()


def install_timers(timers: Timers) -> list[tuple[str, str]]:
    """Time URL resolution and the view of any path (BaseHandler looks both up per request),
    and the gated view's stages; returns (stage, what it covers) in report order."""
    import httpx
    from django.core.cache.backends.locmem import LocMemCache
    from django.core.handlers.base import BaseHandler
    from django.http import HttpRequest

    from consent_service.proxy import codecs, forwarder, stats, views

    make_view_atomic = BaseHandler.make_view_atomic

    def timed_view(handler: BaseHandler, view: Callable[..., Any]) -> Callable[..., Any]:
        atomic = make_view_atomic(handler, view)

        def timed(*args: Any, **kwargs: Any) -> Any:
            return timers.measure("view", atomic, *args, **kwargs)

        return timed

    setattr(BaseHandler, "make_view_atomic", timed_view)  # noqa: B010 (stubs type the method)
    timers.wrap(BaseHandler, "resolve_request", "resolve")
    stages = [
        (views, "spool_full", "spool full?", "spool depth check (a COUNT at most 1/s)"),
        (views, "_read_body", "read body", "request.read() of the client body"),
        (views, "decode_payload", "decode", "gunzip + bounded json parse + shape checks"),
        (codecs, "gunzip_bounded", "  gunzip", "inside decode"),
        (codecs, "parse_json", "  json parse", "inside decode (depth and container checks)"),
        (views, "_screen", "screen", "token, event name, uuid, timestamp checks"),
        (views, "caller_for", "caller", "signed visitor cookie + cached consent lookup"),
        (HttpRequest, "get_signed_cookie", "  signed cookie", "inside caller (HMAC check)"),
        (LocMemCache, "get", "  cache.get", "locmem get (pickle.loads), inside caller"),
        (views, "owners_of", "owners", "lookup of ids the visitor does not own yet"),
        (views, "gate_for_caller", "gate", "per-event identity and consent rules"),
        (stats, "record", "stats", "kept/dropped counters"),
        (views, "_spool_events", "spool", "rebuild, encode and append the kept events"),
        (views, "rebuilt_event", "  rebuild", "inside spool: each kept event rebuilt"),
        (views, "encode_json", "  encode", "inside spool: json of the kept events"),
        (views, "client_ip", "  client ip", "inside spool: the visitor's trusted IP"),
        (views, "spool_append", "  spool insert", "inside spool: one INSERT, its commit"),
        (httpx.Client, "send", "httpx send", "pooled upstream POST incl. waiting for it"),
        (forwarder, "spool_claim", "claim", "forwarder: lease due spooled requests"),
        (forwarder, "_deliverable", "consent", "forwarder: consent re-check, time, $ip"),
        (forwarder, "_post", "post", "forwarder: gzip + POST /batch/ + the answer"),
        (forwarder, "spool_done", "settle", "forwarder: delete the delivered requests"),
    ]
    for owner, attribute, name, _ in stages:
        timers.wrap(owner, attribute, name)
    return [(name, covers) for _, _, name, covers in stages]


# --- measurement --------------------------------------------------------------------------


def run_requests(
    call: Wsgi, requests: int, path: str, headers: dict[str, str], body: bytes
) -> None:
    method = "GET" if path == HELLO_PATH else "POST"
    for _ in range(requests):
        status, _, content = call(method, path, headers, b"" if method == "GET" else body)
        if status != 200 or (method == "POST" and check_accepted(content)):
            raise BenchmarkError(f"{path}: {status} {content[:200]!r}")


COST_HEADER = (
    f"{'path':<22} {'CPU':>6} {'wall':>6} {'resolve':>7} {'view':>6} {'httpx':>6} "
    f"{'view-httpx':>10} {'outside view':>12}"
)


def cost(
    call: Wsgi, timers: Timers, requests: int, path: str, headers: dict[str, str], body: bytes
) -> str:
    """CPU and wall per request; wall in URL resolution, in the view, in httpx.Client.post
    (the upstream round trip), and outside the view (WSGI handler and middleware)."""
    run_requests(call, max(requests // 10, 20), path, headers, body)  # warm
    timers.reset()
    timers.enabled = True
    cpu, wall = time.process_time(), time.perf_counter()
    run_requests(call, requests, path, headers, body)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    timers.enabled = False
    resolve, view, upstream = (
        timers.per_request(name, requests) for name in ("resolve", "view", "httpx send")
    )
    per = 1e6 / requests
    return (
        f"{path:<22} {cpu * per:6.0f} {wall * per:6.0f} {resolve:7.0f} {view:6.0f} "
        f"{upstream:6.0f} {view - upstream:10.0f} {wall * per - view - resolve:12.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--top", type=int, default=30, help="cProfile rows to print")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="consent-bench-profile-"))
    try:
        url, database = database_url(workdir)
        base_env = benchmark_env(url, SETTINGS_MODULE)
        with sandbox(base_env, workdir / "sandbox.log") as upstream:
            env = service_env(base_env, upstream.url)
            print(f"sandbox on {upstream.url}; migrating ({database}) ...", flush=True)
            migrate(env)
            os.environ.update(env)
            profile(args, upstream)
        return 0
    except BenchmarkError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def profile(args: argparse.Namespace, upstream: Sandbox) -> None:
    from benchmarks.wsgi import application  # sets Django up, as gunicorn's import does

    call = Wsgi(application)
    cookies = consenting_visitor(call)
    headers = client_headers(cookies)
    body = capture_body()
    gated = PATHS["gated"]
    timers = Timers()
    stages = install_timers(timers)
    run_requests(call, 1, gated, headers, body)  # binds the distinct_id

    print(f"\n1. cost per request, {args.requests} sequential requests each, no profiler (us)")
    print(f"  {COST_HEADER}")
    for path in (HELLO_PATH, PATHS["bare"], PATHS["blind"], gated, PATHS["blind"], gated):
        upstream.reset()
        print("  " + cost(call, timers, args.requests, path, headers, body))

    print(f"\n2. gated request by stage (wall us/req over {args.requests} requests)")
    upstream.reset()
    run_requests(call, 50, gated, headers, body)
    timers.reset()
    timers.enabled = True
    began = time.perf_counter()
    run_requests(call, args.requests, gated, headers, body)
    total = time.perf_counter() - began
    timers.enabled = False
    per = 1e6 / args.requests
    view = timers.totals.get("view", 0.0)
    resolve = timers.totals.get("resolve", 0.0)
    print(f"  {'whole request (WSGI call)':<26} {total * per:7.0f}")
    print(f"  {'outside the view':<26} {(total - view - resolve) * per:7.0f}  WSGI + middleware")
    print(f"  {'URL resolution':<26} {resolve * per:7.0f}")
    print(f"  {'view':<26} {view * per:7.0f}  proxy(), of which:")
    for name, covers in stages:
        if name in timers.totals:
            calls = timers.counts[name] / args.requests
            print(f"  {'  ' + name:<26} {timers.totals[name] * per:7.0f}  {calls:g}/req  {covers}")
    top_level = ("spool full?", "read body", "decode", "screen", "caller", "owners", "gate")
    accounted = sum(timers.totals.get(name, 0.0) for name in (*top_level, "stats", "spool"))
    print(f"  {'    not in a stage':<26} {(view - accounted) * per:7.0f}  claims_bind, settle, ...")

    print(f"\n3. cProfile of {args.requests} gated requests (top {args.top} by own time)")
    upstream.reset()
    profiler = cProfile.Profile()
    profiler.enable()
    run_requests(call, args.requests, gated, headers, body)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())

    forward(call, timers, args.requests, headers, body)


def forward(
    call: Wsgi, timers: Timers, requests: int, headers: dict[str, str], body: bytes
) -> None:
    """The forwarder's share of a gated request, run here against the sandbox."""
    from consent_service.proxy.forwarder import forward_round

    def drain() -> int:
        delivered = 0
        while (done := forward_round(worker="profile")).requests:
            delivered += done.delivered
        return delivered

    drain()  # what 1 to 3 spooled
    run_requests(call, requests, PATHS["gated"], headers, body)
    timers.reset()
    timers.enabled = True
    cpu, wall = time.process_time(), time.perf_counter()
    delivered = drain()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    timers.enabled = False
    per = 1e6 / requests
    print(f"\n4. the forwarder, draining {requests} gated requests ({delivered} events) (us/req)")
    print(f"  {'CPU':<26} {cpu * per:7.0f}  this process; the sandbox's side is not in it")
    print(f"  {'wall':<26} {wall * per:7.0f}")
    for name in ("claim", "consent", "post", "settle"):
        calls = timers.counts.get(name, 0)
        print(f"  {'  ' + name:<26} {timers.per_request(name, requests):7.0f}  {calls} calls")


if __name__ == "__main__":
    sys.exit(main())
