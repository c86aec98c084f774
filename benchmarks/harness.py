"""What the benchmarks share: a fresh database, gunicorn on a free port, a consenting
visitor, a light keep-alive load generator (http.client threads), per-round measurement with
CPU accounting from /proc, and the per-endpoint summary.

Used by benchmarks/config_endpoint.py and benchmarks/proxy.py; run those, not this.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "benchmarks.settings"
HOST = "127.0.0.1"
CONFIG_PATH = "/api/v1/analytics/config/"
CONSENT_PATH = "/api/v1/consent/"
HELLO_PATH = "/bench/hello/"
MAX_ERROR_SAMPLES = 5

Check = Callable[[bytes], str | None]
HeaderCheck = Callable[[Message], str | None]
CpuMeter = Callable[[], float | None]


class BenchmarkError(Exception):
    """Setup or verification failed: the run is not valid."""


# --- response checks --------------------------------------------------------------------


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


# --- database and processes -------------------------------------------------------------


def benchmark_env(database_url: str, settings_module: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["DATABASE_URL"] = database_url
    # A cache directory of the run's own, beside its database: the default one in /tmp
    # collects the entries of every earlier run.
    if database_url.startswith("sqlite:///"):
        env["CONSENT_CACHE_DIR"] = str(
            Path(database_url.removeprefix("sqlite:///")).parent / "cache"
        )
    env.setdefault("DJANGO_SECURE_COOKIES", "0")
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def database_url(workdir: Path) -> tuple[str, str]:
    """DATABASE_URL from the environment, else a fresh SQLite file in `workdir`; and how
    to describe it in the report."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url, "DATABASE_URL from the environment"
    path = workdir / "bench.sqlite3"
    return f"sqlite:///{path}", f"fresh SQLite {path}"


def migrate(env: dict[str, str]) -> None:
    manage(env, "migrate", "--noinput")
    manage(env, "consent_defaults")


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


def log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def process_cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU of these processes so far, or None where /proc is missing."""
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


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

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
        return process_cpu_seconds(self.worker_pids())


@contextmanager
def gunicorn(
    env: dict[str, str],
    workers: int,
    log_path: Path,
    ready_path: str = HELLO_PATH,
    app: str = "config.wsgi",
) -> Iterator[Server]:
    """`app`: the WSGI module gunicorn serves (the product's by default)."""
    port = free_port()
    command = [
        *gunicorn_command(),
        app,
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
        wait_until_ready(process, port, ready_path, log_path, name="gunicorn")
        yield server
    finally:
        stop(process)


def wait_until_ready(
    process: subprocess.Popen[bytes],
    port: int,
    path: str,
    log_path: Path,
    *,
    name: str,
    timeout: float = 30.0,
) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"{name} exited with {process.returncode}:\n{log_tail(log_path)}")
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            conn.request("GET", path)
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
        f"{name} did not answer in {timeout}s ({last_error}):\n{log_tail(log_path)}"
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


def consenting_visitor(conn: http.client.HTTPConnection) -> dict[str, str]:
    """A new visitor (config GET: cookies) who grants analytics and session replay."""
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
    return cookies


def verify_config(conn: http.client.HTTPConnection, cookies: dict[str, str]) -> None:
    conn.request("GET", CONFIG_PATH, headers={"Cookie": cookie_header(cookies)})
    response = conn.getresponse()
    body = response.read()
    problem = check_config(body) if response.status == 200 else f"status {response.status}"
    if problem:
        raise BenchmarkError(f"config GET after consent: {problem}")


def returning_visitor(port: int) -> dict[str, str]:
    """A visitor who got the config (cookies) and granted analytics and session replay."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        cookies = consenting_visitor(conn)
        verify_config(conn, cookies)
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
    method: str = "GET"
    body: bytes | None = None
    check_headers: HeaderCheck | None = None
    port: int | None = None  # None: the port run_round is given


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
    cpu: dict[str, float | None]  # CPU seconds of each metered process group
    host_busy: float | None  # share of all cores busy during the round, 0 to 1
    finished: float  # time.perf_counter() when the last client stopped

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu(self) -> float | None:
        return self.cpu.get("server")

    def add_cpu(self, before: dict[str, float | None], after: dict[str, float | None]) -> None:
        """Charge this round with CPU spent after it (e.g. work it left queued), read by
        `read_meters` before and after that work."""
        for name, spent in self.cpu.items():
            start, end = before.get(name), after.get(name)
            if spent is None or start is None or end is None:
                self.cpu[name] = None
            else:
                self.cpu[name] = spent + end - start


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
                conn.request(endpoint.method, endpoint.path, body=endpoint.body, headers=headers)
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
            if problem is None and endpoint.check_headers is not None:
                problem = endpoint.check_headers(response.headers)
            if problem:
                result.error(problem)
    finally:
        conn.close()
    return result, time.perf_counter()


def read_meters(meters: Mapping[str, CpuMeter]) -> dict[str, float | None]:
    return {name: meter() for name, meter in meters.items()}


def run_round(
    port: int,
    endpoint: Endpoint,
    clients: int,
    seconds: float,
    meters: Mapping[str, CpuMeter],
) -> Round:
    """`clients` threads load the endpoint for `seconds`; `meters` read the CPU seconds of
    the processes to account (e.g. the gunicorn workers) before and after."""
    start = threading.Event()
    deadline = [0.0]
    outcomes: list[tuple[ClientResult, float]] = []
    lock = threading.Lock()
    target_port = endpoint.port or port

    def target() -> None:
        outcome = client_loop(target_port, endpoint, start, deadline)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=target, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before = read_meters(meters)
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
    cpu_after = read_meters(meters)
    cpu: dict[str, float | None] = {}
    for name, before in cpu_before.items():
        after = cpu_after[name]
        cpu[name] = after - before if before is not None and after is not None else None
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
        cpu=cpu,
        host_busy=host_busy,
        finished=finished,
    )


def round_order(items: list[Endpoint], index: int) -> list[Endpoint]:
    """Two endpoints: ABBA. More: rotate by one each round and reverse every other round,
    so each endpoint takes every position and follows every other one."""
    if len(items) <= 2:
        return items if index % 2 == 0 else items[::-1]
    shift = (index // 2) % len(items)
    rotated = items[shift:] + items[:shift]
    return rotated if index % 2 == 0 else rotated[::-1]


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

    @property
    def connections(self) -> int:
        return sum(round_.connections for round_ in self.rounds)

    def percentile_ms(self, fraction: float) -> float:
        values = sorted(value for round_ in self.rounds for value in round_.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(fraction * len(values)))] * 1000

    def cpu_us_per_request(self, which: str) -> float | None:
        """`client` (this load generator) or the name of a meter given to run_round."""
        total = 0.0
        for round_ in self.rounds:
            value = round_.client_cpu if which == "client" else round_.cpu.get(which)
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


def load_parser(
    doc: str | None, *, clients: int, noun: str, settings: str
) -> argparse.ArgumentParser:
    """The options every load benchmark takes, with its own default client count."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=clients, help="concurrent client threads")
    parser.add_argument("--warmup", type=float, default=2.0, help=f"warm-up seconds per {noun}")
    parser.add_argument("--rounds", type=int, default=8, help=f"measured rounds per {noun}")
    parser.add_argument("--round-seconds", type=float, default=2.0, help="seconds per round")
    parser.add_argument(
        "--settings",
        default=settings,
        help=f"Django settings module for migrate and gunicorn (default {settings}; "
        "another one must be importable, e.g. via PYTHONPATH, for A/B experiments)",
    )
    return parser
