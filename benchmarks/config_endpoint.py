"""Benchmark: GET /api/v1/analytics/config/ for a returning visitor vs a hello-world view.

Run from the repository root:

    .venv/bin/python benchmarks/config_endpoint.py [--rounds 8] [--round-seconds 2] ...

It migrates a fresh SQLite database in a temp dir (or the database named by DATABASE_URL),
serves the app with gunicorn (2 sync workers, settings `benchmarks.settings`), records one
visitor's consent (analytics and session_replay granted), then loads both endpoints in
interleaved rounds from a few keep-alive HTTP/1.1 client threads and prints req/s, latency,
CPU per request and the config/hello ratio (target >= 0.5). Gunicorn's sync workers answer
`Connection: close`, so clients reconnect per request; the table counts connections opened.

The exit status is non-zero only on errors (setup failure, a non-200 answer, a config body
that does not say analytics is granted); a missed target is reported, not failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "benchmarks.settings"
HOST = "127.0.0.1"
CONFIG_PATH = "/api/v1/analytics/config/"
CONSENT_PATH = "/api/v1/consent/"
HELLO_PATH = "/bench/hello/"
TARGET_RATIO = 0.5
MAX_ERROR_SAMPLES = 5

Check = Callable[[bytes], str | None]


class BenchmarkError(Exception):
    """Setup or verification failed: the run is not valid."""


# --- response checks --------------------------------------------------------------------


def check_hello(body: bytes) -> str | None:
    return None if body == b"ok" else f"unexpected hello body {body[:80]!r}"


def check_config(body: bytes) -> str | None:
    """The visitor granted analytics and replay: the config must say so."""
    try:
        data = json.loads(body)
        granted = data["consent"]["purposes"]["analytics"]["granted"]
        opted_out = data["options"]["opt_out_capturing_by_default"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"config body is not the expected JSON ({exc!r}): {body[:120]!r}"
    if granted is not True or opted_out is not False:
        return f"config says analytics not granted: {body[:200]!r}"
    return None


# --- server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def gunicorn_command() -> list[str]:
    script = Path(sys.executable).with_name("gunicorn")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gunicorn"]


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """Gunicorn's workers: the master's children (Linux /proc only)."""
        master = self.process.pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            return [int(pid) for pid in children]
        except OSError:
            pass
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(stat.parent.name))
        return pids

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the workers so far, or None where /proc is missing."""
        pids = self.worker_pids()
        if not pids:
            return None
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                return None
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def gunicorn(env: dict[str, str], workers: int, log_path: Path) -> Iterator[Server]:
    port = free_port()
    command = [
        *gunicorn_command(),
        "config.wsgi",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process=process, port=port, log_path=log_path)
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(process)


def wait_until_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(
                f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        conn = http.client.HTTPConnection(HOST, server.port, timeout=2)
        try:
            conn.request("GET", HELLO_PATH)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            last_error = f"status {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            last_error = repr(exc)
        finally:
            conn.close()
        time.sleep(0.1)
    raise BenchmarkError(
        f"gunicorn did not answer in {timeout}s ({last_error}):\n{server.log_tail()}"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM is gunicorn's graceful shutdown; kill its process group if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def host_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


# --- the visitor ------------------------------------------------------------------------


def set_cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    cookies = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        cookies[name.strip()] = value.strip()
    return cookies


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def returning_visitor(port: int) -> dict[str, str]:
    """A visitor who got the config (cookies) and granted analytics and session replay."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", CONFIG_PATH)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchmarkError(f"first config GET: {response.status} {body[:200]!r}")
        cookies = set_cookies(response)
        for name in ("consent_vid", "csrftoken"):
            if name not in cookies:
                raise BenchmarkError(f"first config GET set no {name} cookie: {cookies}")

        payload = {"purposes": {"analytics": True, "session_replay": True}, "policy_version": "1"}
        conn.request(
            "POST",
            CONSENT_PATH,
            body=json.dumps(payload),
            headers={
                "Content-Type": "application/json",
                "X-CSRFToken": cookies["csrftoken"],
                "Cookie": cookie_header(cookies),
            },
        )
        response = conn.getresponse()
        body = response.read()
        if response.status != 201:
            raise BenchmarkError(f"consent POST: {response.status} {body[:300]!r}")
        cookies.update(set_cookies(response))  # the decision renews the visitor cookie

        conn.request("GET", CONFIG_PATH, headers={"Cookie": cookie_header(cookies)})
        response = conn.getresponse()
        body = response.read()
        problem = check_config(body) if response.status == 200 else f"status {response.status}"
        if problem:
            raise BenchmarkError(f"config GET after consent: {problem}")
        return cookies
    finally:
        conn.close()


# --- load generator ---------------------------------------------------------------------


@dataclass
class Endpoint:
    label: str
    path: str
    headers: dict[str, str]
    check: Check


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    connections: int = 0
    closes: int = 0  # responses that ended the connection (Connection: close)
    retries: int = 0  # a reused keep-alive connection found closed: resent on a new one
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)


@dataclass
class Round:
    requests: int
    seconds: float
    latencies: list[float]
    connections: int
    closes: int
    retries: int
    errors: int
    error_samples: list[str]
    client_cpu: float
    server_cpu: float | None
    host_busy: float | None  # share of all cores busy during the round, 0 to 1

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def client_loop(
    port: int, endpoint: Endpoint, start: threading.Event, deadline: list[float]
) -> tuple[ClientResult, float]:
    """Requests back to back until the deadline; returns the results and the finish time."""
    result = ClientResult()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Connection": "keep-alive", **endpoint.headers}
    start.wait()
    stop_at = deadline[0]
    try:
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                break
            fresh = conn.sock is None
            try:
                if fresh:
                    result.connections += 1
                conn.request("GET", endpoint.path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if fresh:
                    result.error(f"{endpoint.path}: {exc!r}")
                    time.sleep(0.01)  # do not spin on a refused connection
                else:
                    result.retries += 1
                continue
            result.latencies.append(time.perf_counter() - began)
            if response.will_close:
                result.closes += 1
            if response.status != 200:
                result.error(f"{endpoint.path}: status {response.status} {body[:120]!r}")
                continue
            problem = endpoint.check(body)
            if problem:
                result.error(problem)
    finally:
        conn.close()
    return result, time.perf_counter()


def run_round(server: Server, endpoint: Endpoint, clients: int, seconds: float) -> Round:
    start = threading.Event()
    deadline = [0.0]
    outcomes: list[tuple[ClientResult, float]] = []
    lock = threading.Lock()

    def target() -> None:
        outcome = client_loop(server.port, endpoint, start, deadline)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=target, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    server_cpu_before = server.cpu_seconds()
    host_before = host_cpu_ticks()
    client_cpu_before = time.process_time()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.set()
    for thread in threads:
        thread.join()
    finished = max((end for _, end in outcomes), default=time.perf_counter())
    client_cpu = time.process_time() - client_cpu_before
    host_after = host_cpu_ticks()
    server_cpu_after = server.cpu_seconds()
    server_cpu = (
        server_cpu_after - server_cpu_before
        if server_cpu_before is not None and server_cpu_after is not None
        else None
    )
    host_busy = None
    if host_before is not None and host_after is not None and host_after[1] > host_before[1]:
        host_busy = (host_after[0] - host_before[0]) / (host_after[1] - host_before[1])
    results = [result for result, _ in outcomes]
    latencies = [value for result in results for value in result.latencies]
    return Round(
        requests=len(latencies),
        seconds=finished - began,
        latencies=latencies,
        connections=sum(result.connections for result in results),
        closes=sum(result.closes for result in results),
        retries=sum(result.retries for result in results),
        errors=sum(result.errors for result in results),
        error_samples=[sample for result in results for sample in result.error_samples],
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        host_busy=host_busy,
    )


# --- report -----------------------------------------------------------------------------


@dataclass
class Summary:
    endpoint: Endpoint
    rounds: list[Round]

    @property
    def median_rate(self) -> float:
        return statistics.median(round_.rate for round_ in self.rounds)

    @property
    def requests(self) -> int:
        return sum(round_.requests for round_ in self.rounds)

    @property
    def seconds(self) -> float:
        return sum(round_.seconds for round_ in self.rounds)

    @property
    def errors(self) -> int:
        return sum(round_.errors for round_ in self.rounds)

    def percentile_ms(self, fraction: float) -> float:
        values = sorted(value for round_ in self.rounds for value in round_.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(fraction * len(values)))] * 1000

    def cpu_us_per_request(self, which: str) -> float | None:
        total = 0.0
        for round_ in self.rounds:
            value = round_.client_cpu if which == "client" else round_.server_cpu
            if value is None:
                return None
            total += value
        return total / self.requests * 1e6 if self.requests else None

    @property
    def host_busy(self) -> float | None:
        values = [round_.host_busy for round_ in self.rounds]
        if not values or any(value is None for value in values):
            return None
        return statistics.mean(value for value in values if value is not None)


def format_us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def format_percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


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
            f"{sum(r.connections for r in summary.rounds):>7} "
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


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=8, help="measured rounds per endpoint")
    parser.add_argument("--round-seconds", type=float, default=2.0, help="seconds per round")
    parser.add_argument(
        "--settings",
        default=SETTINGS_MODULE,
        help=f"Django settings module for migrate and gunicorn (default {SETTINGS_MODULE}; "
        "another one must be importable, e.g. via PYTHONPATH, for A/B experiments)",
    )
    return parser.parse_args(argv)


def benchmark_env(database_url: str, settings_module: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["DATABASE_URL"] = database_url
    env.setdefault("DJANGO_SECURE_COOKIES", "0")
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def run(args: argparse.Namespace, workdir: Path) -> int:
    database_url = os.environ.get("DATABASE_URL", "").strip()
    database = "DATABASE_URL from the environment"
    if not database_url:
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        database = f"fresh SQLite {workdir / 'bench.sqlite3'}"
    env = benchmark_env(database_url, args.settings)
    print(f"migrating ({database}) ...", flush=True)
    manage(env, "migrate", "--noinput")
    manage(env, "consent_defaults")

    with gunicorn(env, args.workers, workdir / "gunicorn.log") as server:
        print(f"gunicorn pid {server.process.pid} on {HOST}:{server.port}", flush=True)
        cookies = returning_visitor(server.port)
        config = Endpoint("config", CONFIG_PATH, {"Cookie": cookie_header(cookies)}, check_config)
        hello = Endpoint("hello", HELLO_PATH, {"Cookie": cookie_header(cookies)}, check_hello)
        endpoints = [config, hello]

        warmup_errors = 0
        for endpoint in endpoints:
            warm = run_round(server, endpoint, args.clients, args.warmup)
            warmup_errors += warm.errors
            for sample in warm.error_samples:
                print(f"warm-up error: {sample}", file=sys.stderr)

        measured: dict[str, list[Round]] = {endpoint.label: [] for endpoint in endpoints}
        for index in range(args.rounds):
            # ABBA ordering so a drift in machine speed does not favour one endpoint.
            order = endpoints if index % 2 == 0 else endpoints[::-1]
            for endpoint in order:
                round_ = run_round(server, endpoint, args.clients, args.round_seconds)
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
    config_rate, hello_rate = summaries[0].median_rate, summaries[1].median_rate
    ratio = config_rate / hello_rate if hello_rate else 0.0
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    pairs = [
        config_round.rate / hello_round.rate
        for config_round, hello_round in zip(summaries[0].rounds, summaries[1].rounds, strict=True)
        if hello_round.rate
    ]
    print(f"ratio config/hello = {ratio:.3f} (target >= {TARGET_RATIO}: {verdict})")
    if pairs:
        print(
            f"  per-round-pair ratios [{', '.join(f'{pair:.2f}' for pair in pairs)}], median "
            f"{statistics.median(pairs):.3f} (less sensitive to load from other processes)"
        )
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
