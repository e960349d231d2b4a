"""OpenTelemetry tracing, with the W3C trace context carried in Kafka headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

_configured = False


def configure_tracing(*, service: str, otlp_endpoint: str | None) -> None:
    """Install a tracer provider; spans are exported only where an endpoint is set."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        # LIMITATION: spans are created and propagated but not exported, because the
        # OTLP exporter package is not a dependency yet and no collector runs locally.
        pass
    trace.set_tracer_provider(provider)
    # The aiokafka instrumentation writes `traceparent` into every produced record.
    AIOKafkaInstrumentor().instrument()
    PymongoInstrumentor().instrument()
    _configured = True


def extract_context(headers: dict[str, bytes]) -> context.Context:
    """The trace context that a Kafka record's headers carry."""
    carrier = {
        name: value.decode(errors="replace")
        for name, value in headers.items()
        if name in ("traceparent", "tracestate")
    }
    return propagate.extract(carrier)


@contextmanager
def consuming_span(name: str, headers: dict[str, bytes]) -> Iterator[trace.Span]:
    """A consumer span that continues the trace of the record being processed."""
    tracer = trace.get_tracer("bin.kafka")
    with tracer.start_as_current_span(
        name, context=extract_context(headers), kind=trace.SpanKind.CONSUMER
    ) as span:
        yield span


def current_trace_id() -> str | None:
    """The hex trace id of the current span, for logs."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
