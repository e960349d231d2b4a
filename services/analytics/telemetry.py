"""Prometheus metrics of the analytics service, behind small `record_...` helpers."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

SNAPSHOTS = Counter(
    "bin_analytics_snapshots_total",
    "Registry snapshots seen by the coverage worker, by kind and outcome.",
    ["kind", "outcome"],
)
RECORDS = Counter(
    "bin_analytics_coverage_records_total",
    "Coverage records published, by level (zone or area).",
    ["level"],
)
PUBLISH_SECONDS = Histogram(
    "bin_analytics_publish_tick_duration_seconds",
    "Time to compute and hand over the coverage records of one publishing tick.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
)
API_RECORDS = Counter(
    "bin_analytics_api_records_total",
    "Records the HTTP process read from Kafka, by topic.",
    ["topic"],
)
SSE_CLIENTS = Gauge(
    "bin_analytics_sse_clients",
    "Clients following the live coverage stream right now.",
)


# Looking a labelled child up costs more than the rest of applying a snapshot:
# the worker does it once per kind and outcome.
_SNAPSHOT_CHILDREN: dict[tuple[str, bool], Any] = {}


def record_snapshot(*, kind: str, applied: bool) -> None:
    """Counts one registry snapshot and whether it changed anything."""
    child = _SNAPSHOT_CHILDREN.get((kind, applied))
    if child is None:
        child = SNAPSHOTS.labels(kind, "applied" if applied else "ignored")
        _SNAPSHOT_CHILDREN[(kind, applied)] = child
    child.inc()


def record_published(*, zones: int, areas: int, seconds: float) -> None:
    """Counts the records of one publishing tick and its duration."""
    RECORDS.labels("zone").inc(zones)
    RECORDS.labels("area").inc(areas)
    PUBLISH_SECONDS.observe(seconds)


def record_api_record(*, topic: str) -> None:
    """Counts one record consumed by the HTTP process."""
    API_RECORDS.labels(topic).inc()
