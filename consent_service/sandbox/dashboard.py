"""GET /_sandbox/: a small HTML page of what arrived, most recent first. Everything shown
came from clients, so every value is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from consent_service.sandbox.state import Sandbox

RECENT = 200


def dashboard_html(sandbox: Sandbox) -> str:
    events = sandbox.store.events[-RECENT:][::-1]
    requests = sandbox.store.requests[-RECENT:][::-1]
    distinct_ids = sorted({event.distinct_id or "" for event in sandbox.store.events})
    event_rows = (
        (
            event.received_at.strftime("%H:%M:%S.%f")[:-3],
            str(event.event.get("event", "")),
            event.distinct_id or "",
            "personless" if event.personless else "",
            event.route,
        )
        for event in events
    )
    request_rows = (
        (
            request.received_at.strftime("%H:%M:%S.%f")[:-3],
            f"{request.method} {request.path}" + (f"?{request.query}" if request.query else ""),
            str(request.status),
            "\n".join(f"{name}: {value}" for name, value in request.headers.items()),
        )
        for request in requests
    )
    return "".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'><title>PostHog sandbox</title>",
            "<style>body{font:14px sans-serif;margin:1em}td,th{border:1px solid #ccc;",
            "padding:2px 6px;vertical-align:top;text-align:left}table{border-collapse:collapse}",
            "pre{margin:0;font-size:12px}</style></head><body><h1>PostHog sandbox</h1>",
            f"<p>{len(sandbox.store.events)} events, {len(sandbox.persons.all())} persons. ",
            "JSON: <a href='/_sandbox/events.json'>events</a>, ",
            "<a href='/_sandbox/requests.json'>requests</a>, ",
            "<a href='/_sandbox/persons.json'>persons</a>.</p>",
            "<h2>Distinct ids</h2><ul>",
            *(f"<li>{escape(distinct_id)}</li>" for distinct_id in distinct_ids),
            "</ul><h2>Recent events</h2>",
            _table(("time", "event", "distinct_id", "person", "route"), event_rows),
            "<h2>Recent requests</h2>",
            _table(("time", "request", "status", "headers"), request_rows, pre_last=True),
            "</body></html>",
        ]
    )


def _table(
    headings: Sequence[str], rows: Iterable[Sequence[str]], *, pre_last: bool = False
) -> str:
    head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
    body = "".join(f"<tr>{_cells(row, pre_last)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cells(row: Sequence[str], pre_last: bool) -> str:
    cells = [f"<td>{escape(value)}</td>" for value in row]
    if pre_last and cells:
        cells[-1] = f"<td><pre>{escape(row[-1])}</pre></td>"
    return "".join(cells)
