"""The /metrics body: this process's counters, or every process's when prometheus-client
runs in multiprocess mode, plus the gauges computed at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from consent_service.core.metrics import multiprocess_dir
from consent_service.ops.collectors import ScrapeCollector


class _Scrape(Collector):
    """One scrape's sources, read in turn; registered nowhere, so nothing outlives it."""

    def __init__(self, sources: Iterable[Collector]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def metrics_exposition(*, accept: str) -> tuple[bytes, str]:
    """The body and its content type, in the format the scraper asked for."""
    path = multiprocess_dir()
    counted: Collector = REGISTRY
    if path:
        # The files hold every process's values, this one's included; the default
        # registry then holds nothing worth adding (its process collectors are per process).
        counted = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]
    encode, content_type = choose_encoder(accept)
    return encode(_Scrape([counted, ScrapeCollector()])), content_type
