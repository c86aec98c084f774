"""Small capture bodies, the recorded fixture requests and a persons-API lookup, for the
sandbox tests."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PERSONAL_API_KEY = "phx_sandbox"
PERSONS = "/api/projects/1/persons/"
TOKEN = "phc_test"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "posthog"
# v1 is the opt-in /i/v1/analytics/events API the sandbox does not serve.
SKIPPED_RUNS = {"python/v1"}


def event(name: str, distinct_id: str | None, **properties: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"event": name, "properties": {"token": TOKEN, **properties}}
    if distinct_id is not None:
        data["properties"]["distinct_id"] = distinct_id
    return data


def batch_body(*events: dict[str, Any], compress: bool = True, **envelope: Any) -> bytes:
    text = json.dumps({"api_key": TOKEN, **envelope, "batch": list(events)}).encode()
    return gzip.compress(text) if compress else text


@dataclass(frozen=True)
class Recorded:
    """One recorded client request: where it went, how it was encoded, what it meant."""

    name: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    decoded: Any

    @property
    def url(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def events(self) -> list[dict[str, Any]]:
        events = self.decoded if isinstance(self.decoded, list) else None
        if events is None:
            events = self.decoded.get("batch", [self.decoded])
        return list(events)


def recorded_requests() -> list[Recorded]:
    found = []
    for log in sorted(FIXTURES.glob("*/*/requests.jsonl")):
        run = log.parent
        if f"{run.parent.name}/{run.name}" in SKIPPED_RUNS:
            continue
        lines = [json.loads(line) for line in log.read_text().splitlines() if line]
        by_number = {line["n"]: line for line in lines}
        found += [_recorded(raw, by_number[int(raw.name[:4])]) for raw in sorted(run.glob("*.raw"))]
    return found


def _recorded(raw: Path, line: dict[str, Any]) -> Recorded:
    wanted = {"content-type", "content-encoding"}
    headers = {name: value for name, value in line["headers"].items() if name.lower() in wanted}
    decoded = json.loads(raw.with_name(f"{raw.stem}_decoded.json").read_text())
    return Recorded(
        name=f"{raw.parent.parent.name}/{raw.parent.name}/{raw.stem}",
        method=line["method"],
        path=line["path"].removeprefix("/ph"),
        query=line["query"],
        headers=headers,
        body=raw.read_bytes(),
        decoded=decoded,
    )


def person_for(api: httpx.Client, distinct_id: str) -> Any:
    """The person PostHog lists for `distinct_id` (GET persons?distinct_id=), or None."""
    results = api.get(PERSONS, params={"distinct_id": distinct_id}).json()["results"]
    assert len(results) <= 1
    return results[0] if results else None
