"""Prometheus metrics (prometheus-client): what every service exposes at ``/metrics``.

- HTTP: Litestar's Prometheus middleware (``http_metrics``): ``botranks_http_requests_total`` and the
  ``botranks_http_request_duration_seconds`` histogram by service (``app_name``), method, path
  template and status.
- Counters kept by the code that does the work: orders and cash events ingested (accepted or
  duplicate), requests refused by the rate limit or a sign-in throttle, events projected per partition.
- Gauges read from the database when scraped (``StoreCollector``): the log's head, each partition's
  position and lag, the relay's position and lag, and a running rebuild's progress.

Services with several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (``serve``): every worker
writes its samples there and ``/metrics`` sums them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .db import Database

__all__ = [
    "INGESTED",
    "REFUSED",
    "PROJECTED",
    "PUBLISHED",
    "StoreCollector",
    "exposition",
    "http_metrics",
    "merge_expositions",
    "CONTENT_TYPE_LATEST",
]

#: request durations: sub-millisecond reads to multi-second batches
DURATION_BUCKETS: list[str | float] = [
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
]

INGESTED = Counter("botranks_ingested_total", "Ledger events received by command_api", ["kind", "outcome"])
REFUSED = Counter("botranks_refused_total", "Requests refused by a limit (429)", ["limit"])
PROJECTED = Counter("botranks_projected_events_total", "Events applied to the read models", ["partition"])
PUBLISHED = Counter("botranks_relay_published_total", "Events the relay published to JetStream")


def http_metrics(service: str):
    """Litestar's Prometheus middleware, configured for ``service`` (path templates, not raw paths)."""
    from litestar.plugins.prometheus import PrometheusConfig

    return PrometheusConfig(
        app_name=service,
        prefix="botranks_http",
        group_path=True,
        buckets=DURATION_BUCKETS,
        exclude=["^/metrics$", "^/healthz$", "^/static/"],
    ).middleware


def _registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Everything())
    for collector in extra:
        registry.register(collector)
    return registry


class _Everything(Collector):
    """The default registry's metrics (this process's), under a registry of our own."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of this process's (or this service's workers') metrics, plus ``extra``."""
    return generate_latest(_registry(extra))


class StoreCollector(Collector):
    """Gauges read from the database at scrape time: the projection's and the relay's lag, a rebuild's
    progress. Errors make the scrape carry ``botranks_store_up 0`` rather than fail."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("botranks_store_up", "Whether the database answered this scrape")
        try:
            head = self.db.events.max_notification_id()
            positions = self.db.projection.partition_positions()
            relay = self.db.events.relay_position()
            rebuild = self.db.projection.rebuild_progress()
        except Exception:  # noqa: BLE001 - a scrape during an outage says so
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("botranks_event_log_head", "The last notification id of the event store", value=head)
        position = GaugeMetricFamily(
            "botranks_projection_position", "Each partition's position in the event log", labels=["partition"]
        )
        lag = GaugeMetricFamily(
            "botranks_projection_lag_events", "Events of the log a partition has not read yet", labels=["partition"]
        )
        for partition, at in sorted(positions.items()):
            position.add_metric([str(partition)], at)
            lag.add_metric([str(partition)], max(0, head - at))
        yield position
        yield lag
        yield GaugeMetricFamily(
            "botranks_relay_lag_events",
            "Events stored past the relay's recorded position (recorded every 0.5 s while it publishes)",
            value=max(0, head - relay),
        )
        done = GaugeMetricFamily(
            "botranks_rebuild_progress_ratio", "A running rebuild's progress (0..1; 1: none running)"
        )
        done.add_metric([], rebuild)
        yield done


def merge_expositions(texts: dict[str, str]) -> bytes:
    """One exposition from several, by service name (``botranks up``'s ``/metrics``): each sample gets a
    ``service`` label, and families of the same name are merged."""
    families: dict[str, Metric] = {}
    for service, text in texts.items():
        for family in text_string_to_metric_families(text):
            samples = [s._replace(labels={**s.labels, "service": service}) for s in family.samples]
            if family.name in families:
                families[family.name].samples.extend(samples)
            else:
                family.samples = samples
                families[family.name] = family

    class _Merged(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from families.values()

    registry = CollectorRegistry()
    registry.register(_Merged())
    return generate_latest(registry)
