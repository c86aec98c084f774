"""Benchmark: the consent-gated PostHog proxy against plain forwarding, in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/proxy.py [--rounds 8] [--round-seconds 2] [--clients 16] ...

It starts the PostHog sandbox (`manage.py posthog_sandbox`, a subprocess on a free port),
migrates a fresh SQLite database in a temp dir (or the database named by DATABASE_URL),
serves the app with gunicorn (2 sync workers, settings `benchmarks.settings`, every PostHog
host pointed at the sandbox, POSTHOG_API_KEY=phc_bench), records one visitor's consent
(analytics and session_replay granted) and sends one warm-up batch through /ph/ so the
visitor's distinct_id is bound and the caches are filled. Then it POSTs the same gzipped
posthog-js batch (5 events, Content-Type text/plain, no Content-Encoding, as posthog-js 1.449
sends it) from a few keep-alive HTTP/1.1 client threads, in interleaved rounds, at:

- sandbox   the sandbox itself (POST /i/v0/e/): the upstream's own ceiling;
- blind     /bench/blind/i/v0/e/: a Django view forwarding the bytes with a pooled client;
- gated     /ph/i/v0/e/ with the visitor's cookies: the product's consent-gated proxy;
- naive     /bench/naive/i/v0/e/: PostHog's Django recipe, a new httpx.Client per request.

Every answer must be 200 `{"status": 1}` (the gated proxy answers so whatever it kept). The
sandbox is reset before each round; after each gated round its events are read back and must
hold at least the 5 events of every gated request answered. The table gives req/s (median
over rounds), latency, connections opened and CPU per request of the gunicorn workers, the
sandbox and this load generator; then gated/blind (target >= 1.0), gated/naive (target >=
25) and whether the gated p99 is under 25 ms. Gunicorn's sync workers answer `Connection:
close`, so clients reconnect per request there; the sandbox keeps connections alive.

The exit status is non-zero only on errors (setup failure, a wrong answer, events missing at
the sandbox); a missed target is reported, not failed.
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
    round_order,
    run_round,
    stop,
    verify_config,
    wait_until_ready,
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
}
TARGET_GATED_BLIND = 1.0
TARGET_GATED_NAIVE = 25.0
TARGET_GATED_P99_MS = 25.0
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
    """What the sandbox held after one gated round."""

    answered: int  # gated requests answered 200 {"status": 1}
    events: int  # events of our distinct_id at the sandbox
    via_proxy: int  # of those, sent by the gated proxy (X-Forwarded-For, gzip)
    with_cookie: int  # of those, carrying a Cookie header upstream (must be 0)


def delivery(sandbox: Sandbox, round_: Round) -> Delivery:
    events = sandbox.events()
    via_proxy = [
        event
        for event in events
        if "x-forwarded-for" in event["headers"]
        and event["headers"].get("content-encoding") == "gzip"
    ]
    return Delivery(
        answered=round_.requests - round_.errors,
        events=len(events),
        via_proxy=len(via_proxy),
        with_cookie=sum("cookie" in event["headers"] for event in via_proxy),
    )


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
        f"gunicorn: {args.workers} sync workers, settings {args.settings}; load: {args.clients} "
        f"client threads (http.client, keep-alive requested), POST of a {body_bytes}-byte "
        f"gzip batch of {EVENTS_PER_BATCH} events; {args.rounds} rounds x "
        f"{args.round_seconds:g}s per target; database: {database}; cores: {os.cpu_count()}"
    )
    header = (
        f"{'target':<8} {'path':<22} {'requests':>8} {'seconds':>7} {'req/s':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'conns':>6} {'srv us/req':>10} {'sbx us/req':>10} "
        f"{'cli us/req':>10} {'host cpu':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for summary in summaries:
        print(
            f"{summary.endpoint.label:<8} {summary.endpoint.path:<22} {summary.requests:>8} "
            f"{summary.seconds:>7.2f} {summary.median_rate:>7.1f} "
            f"{summary.percentile_ms(0.50):>7.2f} {summary.percentile_ms(0.99):>7.2f} "
            f"{summary.connections:>6} "
            f"{format_us(summary.cpu_us_per_request('server')):>10} "
            f"{format_us(summary.cpu_us_per_request('sandbox')):>10} "
            f"{format_us(summary.cpu_us_per_request('client')):>10} "
            f"{format_percent(summary.host_busy):>8} {summary.errors:>6}"
        )
    print(
        "req/s: median over rounds; p50/p99: every measured request; conns: TCP connections "
        "opened by the load generator;\nsrv / sbx / cli us/req: CPU per request of the gunicorn "
        "workers / the sandbox process / this load generator; host cpu: all cores busy"
    )
    for summary in summaries:
        rates = ", ".join(f"{round_.rate:.1f}" for round_ in summary.rounds)
        closes = sum(round_.closes for round_ in summary.rounds)
        retries = sum(round_.retries for round_ in summary.rounds)
        print(
            f"  {summary.endpoint.label}: per-round req/s [{rates}]; "
            f"Connection: close on {closes} responses; stale keep-alive retries {retries}"
        )


def print_ratio(name: str, top: Summary, bottom: Summary, target: float) -> None:
    ratio = top.median_rate / bottom.median_rate if bottom.median_rate else 0.0
    verdict = "met" if ratio >= target else "MISSED"
    pairs = [a.rate / b.rate for a, b in zip(top.rounds, bottom.rounds, strict=True) if b.rate]
    print(f"ratio {name} = {ratio:.3f} (target >= {target:g}: {verdict})")
    if pairs:
        print(
            f"  per-round-pair ratios [{', '.join(f'{pair:.2f}' for pair in pairs)}], median "
            f"{statistics.median(pairs):.3f}"
        )


def total_cpu_us(summary: Summary) -> float | None:
    """Gunicorn + sandbox + load generator CPU per request: what a request costs the box."""
    parts = [summary.cpu_us_per_request(which) for which in ("server", "sandbox", "client")]
    return None if any(part is None for part in parts) else sum(part or 0.0 for part in parts)


def print_verdicts(by_label: dict[str, Summary], deliveries: list[Delivery], clients: int) -> None:
    gated, blind, naive = by_label["gated"], by_label["blind"], by_label["naive"]
    print_ratio("gated/blind", gated, blind, TARGET_GATED_BLIND)
    print_ratio("gated/naive", gated, naive, TARGET_GATED_NAIVE)
    p99 = gated.percentile_ms(0.99)
    verdict = "met" if p99 < TARGET_GATED_P99_MS else "MISSED"
    print(f"gated p99 = {p99:.2f} ms (target < {TARGET_GATED_P99_MS:g} ms: {verdict})")
    if gated.median_rate:
        print(
            f"  with {clients} connections always busy, mean latency is {clients} / req/s = "
            f"{clients / gated.median_rate * 1000:.1f} ms (Little's law): queueing, not service"
        )
    server = {label: s.cpu_us_per_request("server") for label, s in by_label.items()}
    if server["gated"] is not None and server["blind"] is not None:
        print(
            f"gunicorn CPU per request: gated {server['gated']:.0f} us, blind "
            f"{server['blind']:.0f} us (gated - blind = {server['gated'] - server['blind']:.0f} "
            "us: decode, consent lookups, gate, re-encode, header allowlist)"
        )
    gated_cost, blind_cost, naive_cost = (total_cpu_us(s) for s in (gated, blind, naive))
    if gated_cost and blind_cost and naive_cost:
        print(
            f"CPU per request, all processes: gated {gated_cost:.0f} us, blind {blind_cost:.0f} "
            f"us, naive {naive_cost:.0f} us; the CPU-bound ratios they imply: gated/blind "
            f"{blind_cost / gated_cost:.3f}, gated/naive {naive_cost / gated_cost:.2f} "
            "(steadier than req/s when other processes share the cores)"
        )
    answered = sum(item.answered for item in deliveries)
    received = sum(item.via_proxy for item in deliveries)
    print(
        f"sandbox received {received} events from the gated proxy over {len(deliveries)} "
        f"rounds; expected at least {answered * EVENTS_PER_BATCH} ({answered} answered "
        f"requests x {EVENTS_PER_BATCH}); upstream requests with a Cookie header: "
        f"{sum(item.with_cookie for item in deliveries)}"
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
        with gunicorn(env, args.workers, workdir / "gunicorn.log") as server:
            print(f"gunicorn pid {server.process.pid} on {HOST}:{server.port}", flush=True)
            return measure(args, database, env, upstream, server)


def measure(
    args: argparse.Namespace,
    database: str,
    env: dict[str, str],
    upstream: Sandbox,
    server: Server,
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
            port=port,
        )

    endpoints = [
        endpoint("sandbox", upstream.port),
        endpoint("blind"),
        endpoint("gated"),
        endpoint("naive"),
    ]
    warm_up_gated(server.port, endpoints[2])
    meters: dict[str, CpuMeter] = {"server": server.cpu_seconds, "sandbox": upstream.cpu_seconds}

    warmup_errors = 0
    for target in endpoints:
        upstream.reset()
        warm = run_round(server.port, target, args.clients, args.warmup, meters)
        warmup_errors += warm.errors
        for sample in warm.error_samples:
            print(f"warm-up error: {sample}", file=sys.stderr)

    measured: dict[str, list[Round]] = {target.label: [] for target in endpoints}
    deliveries: list[Delivery] = []
    missing = 0
    for index in range(args.rounds):
        for target in round_order(endpoints, index):
            upstream.reset()
            round_ = run_round(server.port, target, args.clients, args.round_seconds, meters)
            measured[target.label].append(round_)
            note = ""
            if target.label == "gated":
                received = delivery(upstream, round_)
                deliveries.append(received)
                note = f" sandbox got {received.via_proxy} events"
                if received.via_proxy < received.answered * EVENTS_PER_BATCH:
                    missing += received.answered * EVENTS_PER_BATCH - received.via_proxy
                    note += f" (MISSING, expected {received.answered * EVENTS_PER_BATCH})"
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

    summaries = [Summary(target, measured[target.label]) for target in endpoints]
    print_report(summaries, args, database, len(body))
    by_label = {summary.endpoint.label: summary for summary in summaries}
    print_verdicts(by_label, deliveries, args.clients)

    errors = warmup_errors + sum(summary.errors for summary in summaries)
    leaks = sum(item.with_cookie for item in deliveries)
    if errors:
        print(f"FAILED: {errors} requests errored or failed the sanity check", file=sys.stderr)
    if missing:
        print(f"FAILED: {missing} gated events never reached the sandbox", file=sys.stderr)
    if leaks:
        print(f"FAILED: {leaks} events reached the sandbox with a Cookie header", file=sys.stderr)
    return 1 if errors or missing or leaks else 0


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
