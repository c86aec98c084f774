"""Gauges of shared state, computed when /metrics is scraped: once per scrape, by the
process that answers it. Every worker counting the same spool would report N copies of it.

A source that cannot be read leaves its gauges out and says so in
`consent_metrics_source_up`, so the scrape still carries every other metric."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consent_service.erasure.services import erasure_counts, erasure_status_counts
from consent_service.spool.store import dead_letters_count, spool_counts

logger = logging.getLogger("consent_service.ops")


def spool_gauges() -> Iterator[Metric]:
    depth, oldest = spool_counts()
    age = max(time.time() - oldest, 0.0) if oldest is not None else 0.0
    yield GaugeMetricFamily(
        "consent_spool_requests", "Proxied requests waiting in the spool for the forwarder.", depth
    )
    yield GaugeMetricFamily(
        "consent_spool_oldest_age_seconds",
        "How long the oldest waiting request has waited (0 when the spool is empty).",
        age,
    )
    yield GaugeMetricFamily(
        "consent_spool_dead_letters",
        "Events PostHog refused on their own, kept for inspection.",
        dead_letters_count(),
    )


def erasure_gauges() -> Iterator[Metric]:
    by_status = GaugeMetricFamily(
        "consent_erasure_requests", "Erasure requests by status.", labels=["status"]
    )
    for status, count in erasure_status_counts().items():
        by_status.add_metric([status], count)
    yield by_status
    attention = erasure_counts()
    yield GaugeMetricFamily(
        "consent_erasure_requests_overdue",
        "Erasure requests not done 25 days after they were made.",
        attention["overdue"],
    )
    yield GaugeMetricFamily(
        "consent_erasure_requests_misconfigured",
        "Erasure requests waiting on a configuration failure (project id, host or key).",
        attention["misconfigured"],
    )


SOURCES: dict[str, Callable[[], Iterator[Metric]]] = {
    "spool": spool_gauges,
    "erasure": erasure_gauges,
}


class ScrapeCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "consent_metrics_source_up",
            "Whether a scrape-time source could be read (1) or not (0).",
            labels=["source"],
        )
        for name, gauges in SOURCES.items():
            try:
                metrics = list(gauges())
            except Exception:  # a failed source must not take every other metric with it
                logger.exception("metrics: %s could not be read", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from metrics
        yield up
