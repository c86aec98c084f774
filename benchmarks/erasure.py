"""Erasure throughput: 1,000 withdrawals drained by one `manage.py erasure_worker --once`
against the sandbox with 20 ms added latency per call, with the bulk strategy and with
one call per person, in the same run. Prints requests per second and the ratio.

Every visitor grants and sends one posthog-js-shaped event through the real proxy (/ph/);
the forwarder delivers the spool to the sandbox (the run stops unless every event arrived);
then every visitor withdraws. Every other one is anonymous and sends it personless
(`$process_person_profile: false`, as posthog-js does under identified_only). The table
says how many of their events the PostHog-faithful sandbox still holds afterwards.

Run from the repo root: .venv/bin/python benchmarks/erasure.py [--count 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
TOKEN = "phc_bench"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    from consent_service.sandbox.server import SandboxServer

    results = {}
    with SandboxServer(port=0) as sandbox:
        for strategy in ("bulk", "per_person"):
            sandbox.reset()
            results[strategy] = run_strategy(sandbox, strategy, args.count, args.latency_ms)
    print_table(results, args)
    complete = all(r["succeeded"] == args.count for r in results.values())
    return 0 if complete and not any(r["events_left"] for r in results.values()) else 1


def run_strategy(sandbox, strategy: str, count: int, latency_ms: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        env = bench_env(sandbox.url, strategy, Path(tmp) / "bench.sqlite3")
        manage("migrate", "--noinput", env=env)
        manage("consent_defaults", env=env)
        ids = [anonymous_id(n) for n in range(count)]
        seed_requests(env, ids)
        delivered = len([e for e in sandbox.store.events if e.distinct_id in set(ids)])
        if delivered != count:
            raise SystemExit(f"seeding delivered {delivered} of {count} events to the sandbox")
        sandbox.faults.add(None, times=None, latency_ms=latency_ms, path_prefix="/api/")
        started = time.perf_counter()
        manage("erasure_worker", "--once", "--batch", "50", env=env)
        seconds = time.perf_counter() - started
        sandbox.faults.clear()
        succeeded = count_succeeded(env)
        calls = len([r for r in sandbox.store.requests if r.path.startswith("/api/")])
        persons_left = len(sandbox.persons.all())
        events_left = len([e for e in sandbox.store.events if e.distinct_id in set(ids)])
    return {
        "seconds": seconds,
        "succeeded": succeeded,
        "calls": calls,
        "persons_left": persons_left,
        "events_left": events_left,
    }


def bench_env(sandbox_url: str, strategy: str, database: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "CONSENT_CACHE_DIR": str(database.parent / "cache"),  # this run's own
        "POSTHOG_API_KEY": TOKEN,
        "POSTHOG_HOST": sandbox_url,
        "POSTHOG_APP_HOST": sandbox_url,
        "POSTHOG_PROJECT_ID": "1",
        "POSTHOG_PERSONAL_API_KEY": "phx_sandbox",
        "CONSENT_ERASURE_STRATEGY": strategy,
        "CONSENT_ERASURE_DELAY_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def anonymous_id(n: int) -> str:
    """A posthog-js anonymous distinct_id (UUIDv7 shape): what a browser may claim."""
    return f"01a21f7b-0000-7000-8000-{n:012x}"


def seed_requests(env: dict[str, str], ids: list[str]) -> None:
    """One visitor per id, through the real API and proxy: grant and send one event; the
    forwarder delivers the spool to the sandbox; then every visitor withdraws."""
    script = f"""
import django, json; django.setup()
from django.core.management import call_command
from django.test import Client
TOKEN = {TOKEN!r}
browsers = []
for n, value in enumerate({ids!r}):
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.get("/api/v1/analytics/config/")
    csrf = {{"X-CSRFToken": browser.cookies["csrftoken"].value}}
    grant = {{"purposes": {{"analytics": True}}, "policy_version": "1", "distinct_id": value}}
    assert browser.post("/api/v1/consent/", json.dumps(grant), "application/json",
        headers=csrf).status_code == 201
    properties = {{"distinct_id": value, "$device_id": value, "token": TOKEN}}
    if n % 2:  # anonymous under identified_only: posthog-js asks for no person
        properties["$process_person_profile"] = False
    event = {{"event": "$pageview", "properties": properties}}
    body = json.dumps({{"api_key": TOKEN, "batch": [event]}})
    assert browser.post("/ph/i/v0/e/", body, "text/plain").status_code == 200
    browsers.append((browser, csrf))
call_command("proxy_forwarder", "--once")  # in PostHog before anyone withdraws
for browser, csrf in browsers:
    assert browser.post("/api/v1/consent/withdraw/", "{{}}", "application/json",
        headers=csrf).status_code == 201
"""
    subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def count_succeeded(env: dict[str, str]) -> int:
    script = (
        "import django; django.setup()\n"
        "from consent_service.erasure.models import ErasureRequest\n"
        "print(ErasureRequest.objects.filter(status='succeeded').count())"
    )
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip())


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"{args.count} withdrawals, one worker, {args.latency_ms} ms added latency per PostHog call"
    )
    header = ("strategy", "seconds", "req/s", "calls", "succeeded", "persons left", "events left")
    print(f"{header[0]:<12}" + "".join(f"{name:>14}" for name in header[1:]))
    for strategy, r in results.items():
        rate = r["succeeded"] / r["seconds"]
        cells = (
            f"{r['seconds']:.1f}",
            f"{rate:.1f}",
            r["calls"],
            r["succeeded"],
            r["persons_left"],
            r["events_left"],
        )
        print(f"{strategy:<12}" + "".join(f"{cell:>14}" for cell in cells))
    bulk, per_person = results["bulk"], results["per_person"]
    print(f"ratio bulk/per_person (req/s): {per_person['seconds'] / bulk['seconds']:.2f}")
    done = bulk["succeeded"] == args.count and bulk["events_left"] == 0
    verdict = "met" if bulk["seconds"] < 60 and done else "MISSED"
    print(f"target: all {args.count} done in under 60 s with one worker (bulk): {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
