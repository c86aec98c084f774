"""Benchmark: GET /api/v1/analytics/config/ for a returning visitor vs a bare Django view.

Run from the repository root:

    .venv/bin/python benchmarks/config_endpoint.py [--rounds 8] [--round-seconds 2] ...

It migrates a fresh SQLite database in a temp dir (or the database named by DATABASE_URL),
serves the app with gunicorn (2 sync workers, settings `benchmarks.settings`), records one
visitor's consent (analytics and session_replay granted), then loads the endpoints in
interleaved rounds from a few keep-alive HTTP/1.1 client threads and prints req/s, latency,
CPU per request and the ratios: config/bare (target >= 0.5), where bare is a Django view
served with no middleware at all (benchmarks/wsgi.py, as benchmarks/proxy.py's baseline),
and config/hello (no target), where hello is a hello-world view behind the site middleware.
Gunicorn's sync workers answer `Connection: close`, so clients reconnect per request; the
table counts connections opened.

The exit status is non-zero only on errors (setup failure, a non-200 answer, a config body
that does not say analytics is granted); a missed target is reported, not failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (  # noqa: E402
    CONFIG_PATH,
    HELLO_PATH,
    HOST,
    SETTINGS_MODULE,
    BenchmarkError,
    Endpoint,
    Round,
    Summary,
    benchmark_env,
    check_config,
    cookie_header,
    database_url,
    format_percent,
    format_us,
    gunicorn,
    load_parser,
    migrate,
    returning_visitor,
    round_order,
    run_round,
)

TARGET_RATIO = 0.5
BARE_PATH = "/bench/bare/config"


def check_hello(body: bytes) -> str | None:
    return None if body == b"ok" else f"unexpected hello body {body[:80]!r}"


def check_bare(body: bytes) -> str | None:
    return None if body == b'{"status": 1}' else f"unexpected bare body {body[:80]!r}"


# --- report -----------------------------------------------------------------------------


def print_report(summaries: list[Summary], args: argparse.Namespace, database: str) -> None:
    print()
    print(
        f"gunicorn: {args.workers} sync workers, settings {args.settings}; load: {args.clients} "
        f"client threads (http.client, keep-alive requested), {args.rounds} rounds x "
        f"{args.round_seconds:g}s per endpoint; database: {database}; cores: {os.cpu_count()}"
    )
    header = (
        f"{'endpoint':<30} {'requests':>9} {'seconds':>8} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'conns':>7} {'srv us/req':>10} {'cli us/req':>10} {'host cpu':>8} "
        f"{'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for summary in summaries:
        print(
            f"{'GET ' + summary.endpoint.path:<30} {summary.requests:>9} "
            f"{summary.seconds:>8.2f} {summary.median_rate:>8.1f} "
            f"{summary.percentile_ms(0.50):>7.2f} {summary.percentile_ms(0.99):>7.2f} "
            f"{summary.connections:>7} "
            f"{format_us(summary.cpu_us_per_request('server')):>10} "
            f"{format_us(summary.cpu_us_per_request('client')):>10} "
            f"{format_percent(summary.host_busy):>8} {summary.errors:>6}"
        )
    print(
        "req/s: median over rounds; p50/p99: every measured request; conns: TCP connections "
        "opened;\nsrv/cli us/req: CPU of the gunicorn workers / of this load generator per "
        "request; host cpu: all cores busy"
    )
    for summary in summaries:
        rates = ", ".join(f"{round_.rate:.1f}" for round_ in summary.rounds)
        closes = sum(round_.closes for round_ in summary.rounds)
        retries = sum(round_.retries for round_ in summary.rounds)
        print(
            f"  {summary.endpoint.label}: per-round req/s [{rates}]; "
            f"Connection: close on {closes} responses; stale keep-alive retries {retries}"
        )


def print_ratio(name: str, top: Summary, bottom: Summary, target: float | None) -> None:
    ratio = top.median_rate / bottom.median_rate if bottom.median_rate else 0.0
    if target is None:
        verdict = "no target"
    else:
        verdict = f"target >= {target}: {'met' if ratio >= target else 'MISSED'}"
    print(f"ratio {name} = {ratio:.3f} ({verdict})")
    pairs = [
        upper.rate / lower.rate
        for upper, lower in zip(top.rounds, bottom.rounds, strict=True)
        if lower.rate
    ]
    if pairs:
        print(
            f"  per-round-pair ratios [{', '.join(f'{pair:.2f}' for pair in pairs)}], median "
            f"{statistics.median(pairs):.3f} (less sensitive to load from other processes)"
        )


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = load_parser(__doc__, clients=4, noun="endpoint", settings=SETTINGS_MODULE)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> int:
    url, database = database_url(workdir)
    env = benchmark_env(url, args.settings)
    print(f"migrating ({database}) ...", flush=True)
    migrate(env)

    with gunicorn(env, args.workers, workdir / "gunicorn.log", app="benchmarks.wsgi") as server:
        print(f"gunicorn pid {server.process.pid} on {HOST}:{server.port}", flush=True)
        cookies = returning_visitor(server.port)
        config = Endpoint("config", CONFIG_PATH, {"Cookie": cookie_header(cookies)}, check_config)
        hello = Endpoint("hello", HELLO_PATH, {"Cookie": cookie_header(cookies)}, check_hello)
        bare = Endpoint("bare", BARE_PATH, {"Cookie": cookie_header(cookies)}, check_bare)
        endpoints = [config, hello, bare]
        meters = {"server": server.cpu_seconds}

        warmup_errors = 0
        for endpoint in endpoints:
            warm = run_round(server.port, endpoint, args.clients, args.warmup, meters)
            warmup_errors += warm.errors
            for sample in warm.error_samples:
                print(f"warm-up error: {sample}", file=sys.stderr)

        measured: dict[str, list[Round]] = {endpoint.label: [] for endpoint in endpoints}
        for index in range(args.rounds):
            # ABBA ordering so a drift in machine speed does not favour one endpoint.
            order = round_order(endpoints, index)
            for endpoint in order:
                round_ = run_round(server.port, endpoint, args.clients, args.round_seconds, meters)
                measured[endpoint.label].append(round_)
                print(
                    f"round {index + 1}/{args.rounds} {endpoint.label:<6} "
                    f"{round_.requests:>6} req {round_.rate:>8.1f} req/s "
                    f"errors {round_.errors}",
                    flush=True,
                )
                for sample in round_.error_samples:
                    print(f"  error: {sample}", file=sys.stderr)
        if server.process.poll() is not None:
            raise BenchmarkError(f"gunicorn died during the run:\n{server.log_tail()}")

    summaries = [Summary(endpoint, measured[endpoint.label]) for endpoint in endpoints]
    print_report(summaries, args, database)
    print_ratio("config/bare", summaries[0], summaries[2], TARGET_RATIO)
    print_ratio("config/hello", summaries[0], summaries[1], None)
    errors = warmup_errors + sum(summary.errors for summary in summaries)
    if errors:
        print(f"FAILED: {errors} requests errored or failed the sanity check", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="consent-bench-"))
    try:
        return run(args, workdir)
    except BenchmarkError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
