"""Benchmark: the consent-gated PostHog proxy, spool and forwarder included, against a
blind forwarding view and a bare Django view, in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/proxy.py [--rounds 8] [--round-seconds 2] [--clients 16] ...

Setup: it starts the PostHog sandbox (`manage.py posthog_sandbox`, a subprocess on a free
port), migrates a fresh SQLite database in a temp dir (or the database named by
DATABASE_URL) and serves the app with gunicorn (2 sync workers, settings
`benchmarks.settings`, WSGI app `benchmarks.wsgi`: the product's `config.wsgi` plus the bare
baseline, every PostHog host pointed at the sandbox, POSTHOG_API_KEY=phc_bench). Beside
gunicorn, before any load, it starts the forwarder (`manage.py proxy_forwarder`, default
poll, same environment, settings and database as gunicorn); it stops it with SIGTERM after
the last round. It records one visitor's consent (analytics and session_replay granted) and
sends one warm-up batch through /ph/ so the visitor's distinct_id is bound.

Load: the same gzipped posthog-js batch (5 events, Content-Type text/plain, no
Content-Encoding, as posthog-js 1.449 sends it) POSTed from `--clients` (16) keep-alive
HTTP/1.1 client threads, in interleaved rounds, to:

- sandbox   the sandbox itself (POST /i/v0/e/): the upstream's own ceiling;
- blind     /bench/blind/i/v0/e/: a Django view forwarding the bytes with a pooled client,
            synchronously, through the site middleware;
- gated     /ph/i/v0/e/ with the visitor's cookies: the product. It decodes and gates the
            batch, appends what it kept to the spool (one INSERT into spool_request) and
            answers; the forwarder delivers the spool to the sandbox (POST /batch/, gzip);
- naive     /bench/naive/i/v0/e/: PostHog's Django recipe, a new httpx.Client per request;
- bare      /bench/bare/i/v0/e/: a Django view that reads the body and answers
            `{"status": 1}`, served by the same gunicorn workers through a Django handler
            with no middleware at all (benchmarks/wsgi.py).

Every answer must be 200 `{"status": 1}` (the gated proxy answers so whatever it kept; the
bare answer must carry no X-Request-ID, proof that no middleware ran). The sandbox is reset
before each round. After each gated round (warm-up included) the benchmark waits, up to
60 s, until `SELECT COUNT(*) FROM spool_request` is 0, timing the wait from the moment the
load stopped, then reads the sandbox's events: the forwarder must have posted at least the
5 events of every gated request answered, none with a Cookie header.

CPU per request is read from /proc for the gunicorn workers (`gunicorn`), the forwarder
(`fwd`, its own column), the sandbox and this load generator. Each round is charged with
what these processes spent during it; a gated round is also charged with what they spent
until the spool was empty, so the forwarder's whole cost for that round's events counts.
Its idle polling during the other rounds shows in their `fwd` column. The gated proxy's
server CPU is gunicorn + fwd.

Targets, as ratios of req/s (median over rounds) measured in this run: gated/blind >= 1.5
(stretch 2); gated/bare >= 0.5; gated p99 < 25 ms; the spool empty within 5 s of the end of
every gated round's load. gated/naive is printed without a target. Gunicorn's sync workers
answer `Connection: close`, so clients reconnect per request there; the sandbox keeps
connections alive.

The exit status is non-zero only on errors (setup failure, a wrong answer, events missing at
the sandbox or left in the spool, a Cookie sent upstream); a missed target is reported, not
failed.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (  # noqa: E402
    HOST,
    REPO,
    SETTINGS_MODULE,
    BenchmarkError,
    CpuMeter,
    Endpoint,
    Round,
    Server,
    Summary,
    benchmark_env,
    consenting_visitor,
    cookie_header,
    database_url,
    format_percent,
    format_us,
    free_port,
    gunicorn,
    load_parser,
    log_tail,
    migrate,
    process_cpu_seconds,
    read_meters,
    round_order,
    run_round,
    stop,
    verify_config,
    wait_until_ready,
)
from benchmarks.spool import (  # noqa: E402
    Drain,
    Forwarder,
    SpoolCounter,
    forwarder,
    wait_for_drain,
)

TOKEN = "phc_bench"
DISTINCT_ID = "01a21f7b-5f17-74f3-b340-499214275eb4"  # anonymous posthog-js: = $device_id
SESSION_ID = "01a21f7b-5f3e-7aa4-81f3-c28a4f87140b"
EVENTS_PER_BATCH = 5
CAPTURE = "i/v0/e/"
PATHS = {
    "sandbox": f"/{CAPTURE}",
    "blind": f"/bench/blind/{CAPTURE}",
    "gated": f"/ph/{CAPTURE}",
    "naive": f"/bench/naive/{CAPTURE}",
    "bare": f"/bench/bare/{CAPTURE}",
}
WSGI_APP = "benchmarks.wsgi"  # config.wsgi plus /bench/bare/ without middleware
TARGET_GATED_BLIND = 1.5
STRETCH_GATED_BLIND = 2.0
TARGET_GATED_BARE = 0.5
TARGET_GATED_P99_MS = 25.0
TARGET_DRAIN_SECONDS = 5.0
DRAIN_TIMEOUT_SECONDS = 60.0
FORWARDER_AGENT = "consent-service-forwarder"  # consent_service/proxy/forwarder.py HEADERS
BATCH_ROUTE = "/batch/"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
PAGE = "http://app.example.test/index.html"


# --- the load ---------------------------------------------------------------------------


def posthog_event(index: int, name: str, now: float) -> dict[str, Any]:
    """One event shaped as posthog-js 1.449 sends it (tests/fixtures/posthog/js/default)."""
    return {
        "uuid": f"01a21f7b-715f-74e9-88e5-c4dd78b72b{index:02x}",
        "event": name,
        "properties": {
            "$os": "Linux",
            "$browser": "Chrome",
            "$device_type": "Desktop",
            "$current_url": PAGE,
            "$host": "app.example.test",
            "$pathname": "/index.html",
            "$raw_user_agent": USER_AGENT,
            "$browser_version": 156,
            "$screen_height": 1080,
            "$screen_width": 1920,
            "$lib": "web",
            "$lib_version": "1.449.2",
            "$insert_id": f"bench{index:011d}",
            "$time": round(now, 3),
            "distinct_id": DISTINCT_ID,
            "$device_id": DISTINCT_ID,
            "$session_id": SESSION_ID,
            "$window_id": "01a21f7b-5f3e-7aa4-81f3-c28bb616246c",
            "$pageview_id": "01a21f7b-5f27-7e57-bc9a-bd82060c805f",
            "$referrer": "$direct",
            "$is_identified": False,
            "$process_person_profile": False,
            "token": TOKEN,
        },
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
    }


def capture_body() -> bytes:
    """The gzipped batch every request carries (posthog-js: gzip, text/plain, no header)."""
    now = time.time()
    names = ["$pageview", "custom_event", "$autocapture", "after_identify", "$pageleave"]
    batch = [
        posthog_event(index, names[index % len(names)], now) for index in range(EVENTS_PER_BATCH)
    ]
    document = {
        "api_key": TOKEN,
        "batch": batch,
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
    }
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode())


def check_accepted(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return None if data == {"status": 1} else f"not {{'status': 1}}: {body[:120]!r}"


def check_no_middleware(headers: Message) -> str | None:
    """RequestIdMiddleware tags every answer of the site and of /ph/: not the bare one."""
    return "bare answer has X-Request-ID: middleware ran" if "X-Request-ID" in headers else None


def client_headers(cookies: dict[str, str]) -> dict[str, str]:
    """What a browser sends with posthog-js's batch; the same for every target."""
    return {
        "Content-Type": "text/plain",
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Language": "en-US,en;q=0.9",
        "Origin": "http://app.example.test",
        "Referer": "http://app.example.test/",
        "Cookie": cookie_header(cookies),
    }


# --- the sandbox ------------------------------------------------------------------------


@dataclass
class Sandbox:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds([self.process.pid])

    def control(self, method: str, path: str) -> Any:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            conn.request(method, f"/_sandbox/{path}")
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise BenchmarkError(f"sandbox {method} /_sandbox/{path}: {exc!r}") from exc
        finally:
            conn.close()
        if response.status != 200:
            raise BenchmarkError(f"sandbox {method} /_sandbox/{path}: {response.status}")
        return json.loads(body)

    def reset(self) -> None:
        self.control("POST", "reset")

    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.control("GET", f"events.json?distinct_id={DISTINCT_ID}")
        return events


@contextmanager
def sandbox(env: dict[str, str], log_path: Path) -> Iterator[Sandbox]:
    port = free_port()
    command = [sys.executable, "manage.py", "posthog_sandbox", "--host", HOST, "--port", str(port)]
    # A dev tool: installed whatever settings the service is measured with (--settings).
    env = {**env, "CONSENT_DEV_TOOLS": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ready(process, port, "/_readiness", log_path, name="sandbox")
        yield Sandbox(process, port, log_path)
    finally:
        stop(process)


@dataclass
class Delivery:
    """One gated round once the forwarder emptied the spool, and what the sandbox held."""

    answered: int  # gated requests answered 200 {"status": 1}
    drain: Drain
    events: int  # events of our distinct_id at the sandbox
    forwarded: int  # of those, posted by the forwarder (POST /batch/, its User-Agent, gzip)
    with_cookie: int  # of those, carrying a Cookie header upstream (must be 0)

    @property
    def expected(self) -> int:
        return self.answered * EVENTS_PER_BATCH

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.forwarded)


def delivery(sandbox: Sandbox, round_: Round, drain: Drain) -> Delivery:
    events = sandbox.events()
    forwarded = [
        event
        for event in events
        if event["route"] == BATCH_ROUTE
        and event["headers"].get("user-agent") == FORWARDER_AGENT
        and event["headers"].get("content-encoding") == "gzip"
    ]
    return Delivery(
        answered=round_.requests - round_.errors,
        drain=drain,
        events=len(events),
        forwarded=len(forwarded),
        with_cookie=sum("cookie" in event["headers"] for event in forwarded),
    )


def settle_gated(
    round_: Round,
    upstream: Sandbox,
    running: Forwarder,
    spool: SpoolCounter,
    meters: dict[str, CpuMeter],
) -> Delivery:
    """Wait for the forwarder to empty the spool, charge the round with the CPU spent
    meanwhile, then read what reached the sandbox."""
    before = read_meters(meters)
    drain = wait_for_drain(spool, running, since=round_.finished, timeout=DRAIN_TIMEOUT_SECONDS)
    round_.add_cpu(before, read_meters(meters))
    return delivery(upstream, round_, drain)


# --- setup ------------------------------------------------------------------------------


def service_env(base: dict[str, str], sandbox_url: str) -> dict[str, str]:
    env = dict(base)
    env["POSTHOG_API_KEY"] = TOKEN
    for name in ("POSTHOG_HOST", "POSTHOG_ASSETS_HOST", "POSTHOG_APP_HOST"):
        env[name] = sandbox_url
    return env


def wait_for_consent_caches(env: dict[str, str]) -> None:
    """Without Redis each gunicorn worker caches consent in its own memory: the config GET
    that created the visitor left "no consent" cached in whichever worker served it, and the
    consent POST refreshed only its own worker's copy. Let those copies expire."""
    if env.get("REDIS_URL", "").strip():
        return
    seconds = float(env.get("CONSENT_CACHE_SECONDS", "") or 5) + 0.5
    print(f"waiting {seconds:g}s for per-worker consent caches (locmem) to expire ...", flush=True)
    time.sleep(seconds)


def warm_up_gated(port: int, endpoint: Endpoint) -> None:
    """One batch through /ph/: binds the distinct_id to the visitor and fills the caches."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", endpoint.path, body=endpoint.body, headers=endpoint.headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    problem = f"status {response.status}" if response.status != 200 else None
    problem = problem or check_accepted(body)
    if problem:
        raise BenchmarkError(f"warm-up batch through {endpoint.path}: {problem} {body[:200]!r}")


# --- report -----------------------------------------------------------------------------


def print_report(
    summaries: list[Summary], args: argparse.Namespace, database: str, body_bytes: int
) -> None:
    print()
    print(
        f"gunicorn: {args.workers} sync workers, app {WSGI_APP}, settings {args.settings}; "
        f"forwarder: 1 process (manage.py proxy_forwarder); load: {args.clients} client "
        f"threads (http.client, keep-alive requested), POST of a {body_bytes}-byte gzip batch "
        f"of {EVENTS_PER_BATCH} events; {args.rounds} rounds x {args.round_seconds:g}s per "
        f"target; database: {database}; cores: {os.cpu_count()}"
    )
    header = (
        f"{'target':<8} {'path':<22} {'requests':>8} {'seconds':>7} {'req/s':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'conns':>6} {'gunicorn':>8} {'fwd':>5} {'sandbox':>7} "
        f"{'client':>6} {'host cpu':>8} {'errors':>6}"
    )
    print(f"{'':<80}{' CPU us/req ':-^29}")
    print(header)
    print("-" * len(header))
    for summary in summaries:
        print(
            f"{summary.endpoint.label:<8} {summary.endpoint.path:<22} {summary.requests:>8} "
            f"{summary.seconds:>7.2f} {summary.median_rate:>7.1f} "
            f"{summary.percentile_ms(0.50):>7.2f} {summary.percentile_ms(0.99):>7.2f} "
            f"{summary.connections:>6} "
            f"{format_us(summary.cpu_us_per_request('server')):>8} "
            f"{format_us(summary.cpu_us_per_request('forwarder')):>5} "
            f"{format_us(summary.cpu_us_per_request('sandbox')):>7} "
            f"{format_us(summary.cpu_us_per_request('client')):>6} "
            f"{format_percent(summary.host_busy):>8} {summary.errors:>6}"
        )
    print(
        "req/s: median over rounds; p50/p99: every measured request; conns: TCP connections "
        "opened by the load generator;\nCPU us/req: of the gunicorn workers / the forwarder / "
        "the sandbox / this load generator, per request answered; gated rounds are charged\n"
        "until the spool was empty (the forwarder's delivery of their events); fwd on other "
        "rows: its idle polling; host cpu: all cores busy during the rounds"
    )
    for summary in summaries:
        rates = ", ".join(f"{round_.rate:.1f}" for round_ in summary.rounds)
        closes = sum(round_.closes for round_ in summary.rounds)
        retries = sum(round_.retries for round_ in summary.rounds)
        print(
            f"  {summary.endpoint.label}: per-round req/s [{rates}]; "
            f"Connection: close on {closes} responses; stale keep-alive retries {retries}"
        )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_ratio(
    name: str, top: Summary, bottom: Summary, target: float | None, stretch: float | None = None
) -> None:
    ratio = top.median_rate / bottom.median_rate if bottom.median_rate else 0.0
    goals = []
    if target is not None:
        goals.append(f"target >= {target:g}: {verdict(ratio >= target)}")
    if stretch is not None:
        goals.append(f"stretch >= {stretch:g}: {verdict(ratio >= stretch)}")
    pairs = [a.rate / b.rate for a, b in zip(top.rounds, bottom.rounds, strict=True) if b.rate]
    print(f"ratio {name} = {ratio:.3f} ({'; '.join(goals) or 'no target'})")
    if pairs:
        print(
            f"  per-round-pair ratios [{', '.join(f'{pair:.2f}' for pair in pairs)}], median "
            f"{statistics.median(pairs):.3f}"
        )


def server_cpu_us(summary: Summary) -> float | None:
    """Gunicorn workers + forwarder CPU per request: what the service spends on one."""
    parts = [summary.cpu_us_per_request(which) for which in ("server", "forwarder")]
    return None if any(part is None for part in parts) else sum(part or 0.0 for part in parts)


def total_cpu_us(summary: Summary) -> float | None:
    """Gunicorn + forwarder + sandbox + load generator CPU per request: what a request
    costs the box."""
    parts = [
        summary.cpu_us_per_request(which) for which in ("server", "forwarder", "sandbox", "client")
    ]
    return None if any(part is None for part in parts) else sum(part or 0.0 for part in parts)


def print_verdicts(by_label: dict[str, Summary], clients: int) -> None:
    gated, blind, bare = by_label["gated"], by_label["blind"], by_label["bare"]
    print_ratio("gated/blind", gated, blind, TARGET_GATED_BLIND, STRETCH_GATED_BLIND)
    print_ratio("gated/bare", gated, bare, TARGET_GATED_BARE)
    print_ratio("gated/naive", gated, by_label["naive"], None)
    p99 = gated.percentile_ms(0.99)
    print(
        f"gated p99 = {p99:.2f} ms (target < {TARGET_GATED_P99_MS:g} ms: "
        f"{verdict(p99 < TARGET_GATED_P99_MS)})"
    )
    if gated.median_rate:
        print(
            f"  with {clients} connections always busy, mean latency is {clients} / req/s = "
            f"{clients / gated.median_rate * 1000:.1f} ms (Little's law): queueing, not service"
        )
    workers = gated.cpu_us_per_request("server")
    fwd = gated.cpu_us_per_request("forwarder")
    served = {label: server_cpu_us(summary) for label, summary in by_label.items()}
    if workers is not None and fwd is not None and served["gated"] is not None:
        others = ", ".join(
            f"{label} {format_us(summary.cpu_us_per_request('server'))} us"
            for label, summary in by_label.items()
            if label not in ("gated", "sandbox")
        )
        print(
            f"server CPU per request (gunicorn workers + forwarder): gated {workers:.0f} + "
            f"{fwd:.0f} = {served['gated']:.0f} us; gunicorn workers alone: {others}"
        )
    costs = {label: total_cpu_us(summary) for label, summary in by_label.items()}
    gated_cost, blind_cost, bare_cost = costs["gated"], costs["blind"], costs["bare"]
    if gated_cost and blind_cost and bare_cost:
        listed = ", ".join(
            f"{label} {cost:.0f} us" for label, cost in costs.items() if cost is not None
        )
        print(
            f"CPU per request, all processes (gunicorn + forwarder + sandbox + client): "
            f"{listed};\n  the CPU-bound ratios they imply: gated/blind "
            f"{blind_cost / gated_cost:.3f}, gated/bare {bare_cost / gated_cost:.3f} "
            "(steadier than req/s when other processes share the cores)"
        )


def print_delivery(deliveries: list[Delivery]) -> None:
    depths = ", ".join(str(item.drain.depth) for item in deliveries)
    times = [item.drain.seconds for item in deliveries]
    shown = ", ".join("never" if value is None else f"{value:.2f}" for value in times)
    print(
        f"spool after each gated round: requests waiting when the load stopped [{depths}]; "
        f"empty after [{shown}] s"
    )
    if times and None not in times:
        worst = max(value for value in times if value is not None)
        print(
            f"spool drain time after the load: max {worst:.2f} s, median "
            f"{statistics.median(value for value in times if value is not None):.2f} s "
            f"(target <= {TARGET_DRAIN_SECONDS:g} s: {verdict(worst <= TARGET_DRAIN_SECONDS)})"
        )
    else:
        print(
            f"spool drain time after the load: not empty within {DRAIN_TIMEOUT_SECONDS:g} s "
            f"(target <= {TARGET_DRAIN_SECONDS:g} s: MISSED)"
        )
    answered = sum(item.answered for item in deliveries)
    print(
        f"sandbox received {sum(item.forwarded for item in deliveries)} events from the "
        f"forwarder (POST {BATCH_ROUTE}) over {len(deliveries)} gated rounds; expected at "
        f"least {answered * EVENTS_PER_BATCH} ({answered} answered requests x "
        f"{EVENTS_PER_BATCH}); missing {sum(item.missing for item in deliveries)}; with a "
        f"Cookie header: {sum(item.with_cookie for item in deliveries)}"
    )


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = load_parser(__doc__, clients=16, noun="target", settings=SETTINGS_MODULE)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> int:
    url, database = database_url(workdir)
    base_env = benchmark_env(url, args.settings)
    with sandbox(base_env, workdir / "sandbox.log") as upstream:
        print(f"sandbox pid {upstream.process.pid} on {upstream.url}", flush=True)
        env = service_env(base_env, upstream.url)
        print(f"migrating ({database}) ...", flush=True)
        migrate(env)
        spool = SpoolCounter(url, env)
        try:
            with (
                gunicorn(env, args.workers, workdir / "gunicorn.log", app=WSGI_APP) as server,
                forwarder(env, workdir / "forwarder.log") as running,
            ):
                print(
                    f"gunicorn pid {server.process.pid} on {HOST}:{server.port}; forwarder "
                    f"pid {running.process.pid}",
                    flush=True,
                )
                return measure(args, database, env, upstream, server, running, spool)
        finally:
            spool.close()


@dataclass
class Tally:
    """What the whole run asked of the forwarder, warm-ups included."""

    answered: int = 0  # gated requests answered 200, each spooling EVENTS_PER_BATCH events
    missing: int = 0  # events of gated rounds (warm-up included) the sandbox never got
    leaks: int = 0  # events that reached the sandbox with a Cookie header


def measure(
    args: argparse.Namespace,
    database: str,
    env: dict[str, str],
    upstream: Sandbox,
    server: Server,
    running: Forwarder,
    spool: SpoolCounter,
) -> int:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        cookies = consenting_visitor(conn)
        wait_for_consent_caches(env)
        verify_config(conn, cookies)
    finally:
        conn.close()

    body = capture_body()
    headers = client_headers(cookies)

    def endpoint(label: str, port: int | None = None) -> Endpoint:
        return Endpoint(
            label,
            PATHS[label],
            headers,
            check_accepted,
            method="POST",
            body=body,
            check_headers=check_no_middleware if label == "bare" else None,
            port=port,
        )

    endpoints = [
        endpoint("sandbox", upstream.port),
        endpoint("blind"),
        endpoint("gated"),
        endpoint("naive"),
        endpoint("bare"),
    ]
    warm_up_gated(server.port, endpoints[2])
    tally = Tally(answered=1)
    meters: dict[str, CpuMeter] = {
        "server": server.cpu_seconds,
        "forwarder": running.cpu_seconds,
        "sandbox": upstream.cpu_seconds,
    }

    def settle(round_: Round) -> Delivery:
        received = settle_gated(round_, upstream, running, spool, meters)
        tally.answered += received.answered
        tally.missing += received.missing
        tally.leaks += received.with_cookie
        return received

    warmup_errors = 0
    for target in endpoints:
        upstream.reset()
        warm = run_round(server.port, target, args.clients, args.warmup, meters)
        warmup_errors += warm.errors
        for sample in warm.error_samples:
            print(f"warm-up error: {sample}", file=sys.stderr)
        if target.label == "gated":
            settled = settle(warm)
            print(
                f"warm-up gated: spool empty {format_drain(settled.drain)} after the load; "
                f"sandbox got {settled.forwarded} of {settled.expected} events",
                flush=True,
            )

    measured: dict[str, list[Round]] = {target.label: [] for target in endpoints}
    deliveries: list[Delivery] = []
    for index in range(args.rounds):
        for target in round_order(endpoints, index):
            upstream.reset()
            round_ = run_round(server.port, target, args.clients, args.round_seconds, meters)
            measured[target.label].append(round_)
            note = ""
            if target.label == "gated":
                received = settle(round_)
                deliveries.append(received)
                note = (
                    f"; spool {received.drain.depth} waiting at the end, empty "
                    f"{format_drain(received.drain)}; sandbox got {received.forwarded} events"
                )
                if received.missing:
                    note += f" (MISSING, expected {received.expected})"
            print(
                f"round {index + 1}/{args.rounds} {target.label:<7} "
                f"{round_.requests:>6} req {round_.rate:>8.1f} req/s "
                f"errors {round_.errors}{note}",
                flush=True,
            )
            for sample in round_.error_samples:
                print(f"  error: {sample}", file=sys.stderr)
    for process, name, log in (
        (server.process, "gunicorn", server.log_path),
        (upstream.process, "sandbox", upstream.log_path),
    ):
        if process.poll() is not None:
            raise BenchmarkError(f"{name} died during the run:\n{log_tail(log)}")
    running.check_alive()
    left = spool.count()
    reported = running.stop()  # SIGTERM: the forwarder finishes its round and exits

    summaries = [Summary(target, measured[target.label]) for target in endpoints]
    print_report(summaries, args, database, len(body))
    by_label = {summary.endpoint.label: summary for summary in summaries}
    print_verdicts(by_label, args.clients)
    print_delivery(deliveries)
    expected = tally.answered * EVENTS_PER_BATCH
    print(
        f"after the load: {left} requests left in the spool; forwarder stopped by SIGTERM "
        f"(exit status {running.process.returncode}), it reports "
        f"{'nothing' if reported is None else reported} events delivered over the whole run, "
        f"for {tally.answered} gated requests answered (warm-ups included) x "
        f"{EVENTS_PER_BATCH} = {expected}"
    )

    errors = warmup_errors + sum(summary.errors for summary in summaries)
    if errors:
        print(f"FAILED: {errors} requests errored or failed the sanity check", file=sys.stderr)
    if tally.missing:
        print(f"FAILED: {tally.missing} gated events never reached the sandbox", file=sys.stderr)
    if left:
        print(f"FAILED: {left} requests were left in the spool", file=sys.stderr)
    if tally.leaks:
        print(
            f"FAILED: {tally.leaks} events reached the sandbox with a Cookie header",
            file=sys.stderr,
        )
    if running.process.returncode != 0:
        print(f"FAILED: the forwarder exited with {running.process.returncode}", file=sys.stderr)
    failed = errors or tally.missing or left or tally.leaks or running.process.returncode
    return 1 if failed else 0


def format_drain(drain: Drain) -> str:
    if drain.seconds is None:
        return f"NOT within {DRAIN_TIMEOUT_SECONDS:g} s ({drain.left} requests left)"
    return f"{drain.seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="consent-bench-proxy-"))
    try:
        return run(args, workdir)
    except BenchmarkError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
