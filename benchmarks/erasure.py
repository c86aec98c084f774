"""Erasure throughput: 1,000 withdrawals drained by one `manage.py erasure_worker --once`
against the sandbox with 20 ms added latency per call, with the bulk strategy and with
one call per person, in the same run. Prints requests per second and the ratio.

Run from the repo root: .venv/bin/python benchmarks/erasure.py [--count 1000]
"""

from __future__ import annotations

import argparse
import gzip
import json
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
    return 0 if all(r["succeeded"] == args.count for r in results.values()) else 1


def run_strategy(sandbox, strategy: str, count: int, latency_ms: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        env = bench_env(sandbox.url, strategy, Path(tmp) / "bench.sqlite3")
        manage("migrate", "--noinput", env=env)
        manage("consent_defaults", env=env)
        ids = [f"bench-user-{n}" for n in range(count)]
        seed_posthog(sandbox.url, ids)
        seed_requests(env, ids)
        sandbox.faults.add(None, times=None, latency_ms=latency_ms, path_prefix="/api/")
        started = time.perf_counter()
        manage("erasure_worker", "--once", "--batch", "50", env=env)
        seconds = time.perf_counter() - started
        sandbox.faults.clear()
        succeeded = count_succeeded(env)
        calls = len([r for r in sandbox.store.requests if r.path.startswith("/api/")])
        persons_left = len(sandbox.persons.all())
    return {
        "seconds": seconds,
        "succeeded": succeeded,
        "calls": calls,
        "persons_left": persons_left,
    }


def bench_env(sandbox_url: str, strategy: str, database: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "POSTHOG_API_KEY": TOKEN,
        "POSTHOG_HOST": sandbox_url,
        "POSTHOG_APP_HOST": sandbox_url,
        "POSTHOG_PROJECT_ID": "1",
        "POSTHOG_PERSONAL_API_KEY": "phx_sandbox",
        "ERASURE_STRATEGY": strategy,
        "ERASURE_DELAY_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def seed_posthog(sandbox_url: str, ids: list[str]) -> None:
    """Events for every id, so each erasure has a person to delete."""
    import httpx

    events = [{"event": "$pageview", "distinct_id": i, "properties": {"token": TOKEN}} for i in ids]
    with httpx.Client(base_url=sandbox_url) as client:
        for start in range(0, len(events), 500):
            body = gzip.compress(
                json.dumps({"api_key": TOKEN, "batch": events[start : start + 500]}).encode()
            )
            client.post(
                "/batch/", content=body, headers={"Content-Type": "text/plain"}
            ).raise_for_status()


def seed_requests(env: dict[str, str], ids: list[str]) -> None:
    """One granted-then-withdrawn subject per id, through the ledger services."""
    script = f"""
import django; django.setup()
from consent_service.ledger.models import Subject
from consent_service.ledger.distinct_ids import distinct_ids_bind
from consent_service.ledger.records import Evidence, consent_record_append, ledger_write
from consent_service.ledger.services import subject_withdraw
from consent_service.erasure.outbox import erasure_request_create
evidence = Evidence("127.0.0.0", "bench", "", False)
for value in {ids!r}:
    with ledger_write() as head:
        subject = Subject.objects.create()
        distinct_ids_bind(subject_id=subject.pk, distinct_ids=[value])
        consent_record_append(head=head, subject=subject, choices={{"analytics": True}},
            action="decide", source="api", policy_version="1", evidence=evidence)
        subject_withdraw(head=head, subject=subject, source="api", evidence=evidence)
        erasure_request_create(subject=subject, reason="withdrawal", label="bench")
"""
    subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, check=True)


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
    header = ("strategy", "seconds", "req/s", "calls", "succeeded", "persons left")
    print(f"{header[0]:<12}" + "".join(f"{name:>14}" for name in header[1:]))
    for strategy, r in results.items():
        rate = r["succeeded"] / r["seconds"]
        cells = (
            f"{r['seconds']:.1f}",
            f"{rate:.1f}",
            r["calls"],
            r["succeeded"],
            r["persons_left"],
        )
        print(f"{strategy:<12}" + "".join(f"{cell:>14}" for cell in cells))
    bulk, per_person = results["bulk"], results["per_person"]
    print(f"ratio bulk/per_person (req/s): {per_person['seconds'] / bulk['seconds']:.2f}")
    verdict = "met" if bulk["seconds"] < 60 and bulk["succeeded"] == args.count else "MISSED"
    print(f"target: all {args.count} done in under 60 s with one worker (bulk): {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
