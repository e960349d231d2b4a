"""Prometheus metrics of the messaging service, behind small `record_...` helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate
from prometheus_client import Counter, Histogram

from shared.tracing import consuming_span

DELIVERIES = Counter(
    "bin_messaging_deliveries_total",
    "Delivery outcomes reported by the senders and the fan-out, by channel and status.",
    ["channel", "status"],
)
HANDOVER_SECONDS = Histogram(
    "bin_messaging_handover_latency_seconds",
    "Time from an alert's acceptance to the hand-over of one delivery to its provider.",
    ["channel"],
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900, 3600),
)
FANOUT_DELIVERIES = Counter(
    "bin_messaging_fanout_deliveries_total",
    "Deliveries written to the channel topics by fan-out stage 2.",
    ["channel"],
)
PROVIDER_SECONDS = Histogram(
    "bin_messaging_provider_request_duration_seconds",
    "Time one request to a provider takes, by channel.",
    ["channel"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def record_delivery(*, channel: str, status: str, count: int = 1) -> None:
    """Count delivery outcomes."""
    DELIVERIES.labels(channel, status).inc(count)


def record_handover(*, channel: str, seconds: float) -> None:
    """Observe the latency of one hand-over."""
    HANDOVER_SECONDS.labels(channel).observe(seconds)


def record_fanout(*, channel: str, count: int) -> None:
    """Count deliveries written by the fan-out."""
    FANOUT_DELIVERIES.labels(channel).inc(count)


def record_provider_request(*, channel: str, seconds: float) -> None:
    """Observe the duration of one provider request."""
    PROVIDER_SECONDS.labels(channel).observe(seconds)


def stop_tracing_each_record() -> None:
    """Remove the per-record Kafka spans from a bulk role; it traces per batch.

    The aiokafka instrumentation opens a span for every record produced and every
    record consumed, which costs more than the fan-out's own work per delivery.
    """
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

    instrumentor = AIOKafkaInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@contextmanager
def batch_span(
    name: str, parent: dict[str, bytes]
) -> Iterator[list[tuple[str, bytes]]]:
    """One span for a batch, continuing `parent`'s trace; yields headers carrying it."""
    with consuming_span(name, parent):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield [(key, value.encode()) for key, value in carrier.items()]
