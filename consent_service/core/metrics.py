"""Prometheus metrics, defined on the ground floor so that every layer can count.

Only counters and histograms live here. With `PROMETHEUS_MULTIPROC_DIR` set before the
process starts (prometheus-client's own switch), every process (gunicorn workers, the
forwarder, the erasure worker) writes its values to files in that directory and
`GET /metrics` adds them up. Gauges of shared state (spool depth, erasure backlog) are not
per process: the ops app computes them once per scrape (consent_service/ops/collectors.py).

Label values come from short fixed lists (route names, reasons, statuses), never from paths,
ids or messages: every distinct value is a new series kept forever.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from prometheus_client import Counter, Histogram, disable_created_metrics

# `_created` series double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# PostHog answers in milliseconds to seconds; the deadlines stop at 10 s (API: its timeout).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- proxy (/ph/*) ----------------------------------------------------------------------
PROXY_REQUESTS = Counter(
    "consent_proxy_requests",
    "Requests to the PostHog proxy, by route and the status we answered.",
    ["route", "status"],
)
PROXY_EVENTS_FORWARDED = Counter(
    "consent_proxy_events_forwarded",
    "Events the proxy kept: spooled for the forwarder, or (recordings) sent at once.",
)
PROXY_EVENTS_DROPPED = Counter(
    "consent_proxy_events_dropped", "Events the proxy did not forward, by reason.", ["reason"]
)
PROXY_LINKED_IDS_STRIPPED = Counter(
    "consent_proxy_linked_ids_stripped",
    "Linked ids removed from forwarded events, so PostHog merges nothing with them.",
)

# --- forwarder (manage.py proxy_forwarder) ------------------------------------------------
FORWARDER_EVENTS_DELIVERED = Counter(
    "consent_forwarder_events_delivered", "Spooled events PostHog accepted."
)
FORWARDER_BATCHES_DELIVERED = Counter(
    "consent_forwarder_batches_delivered", "Batches PostHog accepted (one POST to /batch/ each)."
)
FORWARDER_FAILURES = Counter(
    "consent_forwarder_failures",
    "POSTs to /batch/ that delivered nothing, by kind: timeout, network, invalid_answer, "
    "throttled (429), server_error (5xx), rejected (other 4xx: token or host), refused "
    "(400/413: the batch is split to find the event).",
    ["kind"],
)
FORWARDER_EVENTS_DEAD_LETTERED = Counter(
    "consent_forwarder_events_dead_lettered", "Events PostHog refused on their own, kept aside."
)
FORWARDER_EVENTS_DROPPED = Counter(
    "consent_forwarder_events_dropped",
    "Spooled events not sent because consent changed before delivery, by reason.",
    ["reason"],
)
FORWARDER_REQUESTS_RETRIED = Counter(
    "consent_forwarder_requests_retried",
    "Spooled requests put back for a later round after a failed delivery.",
)

# --- PostHog ----------------------------------------------------------------------------
POSTHOG_CAPTURE_REQUESTS = Counter(
    "consent_posthog_capture_requests",
    "The forwarder's POSTs to PostHog's /batch/, by HTTP status (or timeout, error).",
    ["status"],
)
POSTHOG_CAPTURE_DURATION = Histogram(
    "consent_posthog_capture_request_duration_seconds",
    "Time of the forwarder's POSTs to PostHog's /batch/, answer read.",
    buckets=LATENCY_BUCKETS,
)
POSTHOG_API_REQUESTS = Counter(
    "consent_posthog_api_requests",
    "Calls to PostHog's persons API, by endpoint and HTTP status (or timeout, network).",
    ["endpoint", "status"],
)
POSTHOG_API_DURATION = Histogram(
    "consent_posthog_api_request_duration_seconds",
    "Time of calls to PostHog's persons API, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)

# --- consent and erasure ----------------------------------------------------------------
CONSENT_DECISIONS = Counter(
    "consent_decisions",
    "Committed consent choices, one per purpose of each record: action decide or withdraw, "
    "choice granted or refused, source banner, api, admin or gpc.",
    ["purpose", "choice", "action", "source"],
)
ERASURE_OUTCOMES = Counter(
    "consent_erasure_outcomes",
    "The erasure worker's results: step process (status after the round: succeeded, "
    "pending, failed, in_progress) and step confirm (confirmed, unconfirmed).",
    ["step", "result"],
)


# The proxy counts on every request: `labels()` takes a lock and builds a key (about 2 µs),
# a cached child costs a dict lookup. The label values are few, so the caches stay small.
@functools.cache
def proxy_requests(route: str, status: int) -> Counter:
    return PROXY_REQUESTS.labels(route, status)


@functools.cache
def proxy_events_dropped(reason: str) -> Counter:
    return PROXY_EVENTS_DROPPED.labels(reason)


def consent_decisions_count(*, choices: Mapping[str, bool], action: str, source: str) -> None:
    """Count one record's choices. Call it from `transaction.on_commit`: a rolled-back
    decision was never made."""
    for purpose, granted in choices.items():
        choice = "granted" if granted else "refused"
        CONSENT_DECISIONS.labels(purpose, choice, action, source).inc()


def multiprocess_dir() -> str:
    """Where the processes' values are, or "" when each process keeps its own.

    prometheus-client reads this variable itself, when it is imported, to choose where
    values go; the scrape must read the same variable or it would look in the wrong place.
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
