"""Faust set-up shared by the stream workers: the app, raw topics, dead letters, probes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.envelope import EnvelopeError, Received, decode
from shared.settings import ServiceSettings

log = logging.getLogger("bin.streams")


def create_faust_app(
    *,
    app_id: str,
    settings: ServiceSettings,
    web_port: int,
    datadir: Path,
    **overrides: object,
) -> faust.App:
    """A Faust app on the platform's broker, with /healthz, /readyz and /metrics.

    `overrides` are Faust settings that replace the defaults below.
    """
    # Faust stops at start-up when its data directory's parent is missing.
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=[
            f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")
        ],
        broker_credentials=_broker_credentials(settings),
        store="memory://",
        datadir=str(datadir),
        topic_replication_factor=settings.kafka_topic_replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        stream_wait_empty=False,
        web_enabled=True,
        web_host="127.0.0.1" if settings.environment == "development" else "0.0.0.0",
        web_port=web_port,
        web_in_thread=False,
        table_cleanup_interval=60.0,
        **overrides,
    )

    @app.page("/healthz")
    async def healthz(self: object, request: object) -> object:
        return self.json({"status": "alive"})  # type: ignore[attr-defined]

    @app.page("/readyz")
    async def readyz(self: object, request: object) -> object:
        ready = app.rebalancing is False and not app.should_stop
        status = 200 if ready else 503
        return self.json(  # type: ignore[attr-defined]
            {"status": "ready" if ready else "rebalancing"}, status=status
        )

    @app.page("/metrics")
    async def metrics(self: object, request: object) -> object:
        return self.bytes(  # type: ignore[attr-defined]
            generate_latest(), content_type=CONTENT_TYPE_LATEST
        )

    return app


def rewind_uncommitted(app: faust.App, *, topics: list[str]) -> None:
    """Make the worker's seek to its committed offsets rewind partitions without any.

    While a restarted worker recovers its tables, Faust drops records it has just
    fetched for partitions it holds paused, and counts on its seek to the
    committed offsets, when recovery ends, to read them again. A partition with no
    committed offset (its last worker died before its first commit) is not sought
    at all, and those records were never seen again: a restarted fan-out wrote
    nothing for the alert its predecessor had begun. Such partitions go back to
    their first offset, where a worker without a committed offset starts anyway.
    `topics` are the ones the app's agents read; changelogs recover on their own.

    Both seeks are one call into Faust's consumer thread, as its own seek is:
    Faust clears its streams' queues right after that call, and a fetch let in
    between two calls would have its records cleared behind the rewind.
    """
    watched = set(topics)
    new_consumer = app._new_consumer

    async def seek_committed_or_first(kafka: Any) -> Mapping[Any, int]:
        # Runs in the consumer thread, on aiokafka's consumer itself.
        committed = await kafka.seek_to_committed()
        uncommitted = [
            tp for tp, offset in committed.items() if not offset and tp.topic in watched
        ]
        if uncommitted:
            await kafka.seek_to_beginning(*uncommitted)
        return committed

    def consumer_that_rewinds() -> Any:
        # Wrapped when Faust creates its consumer, which it does once it starts.
        consumer = new_consumer()
        thread = consumer._thread

        async def seek_to_committed() -> Mapping[Any, int]:
            return await thread.call_thread(
                seek_committed_or_first, thread._ensure_consumer()
            )

        consumer.seek_to_committed = seek_to_committed
        return consumer

    app._new_consumer = consumer_that_rewinds  # type: ignore[method-assign]


def _broker_credentials(settings: ServiceSettings) -> faust.SASLCredentials | None:
    """SASL credentials for the Faust app when the service's settings name a mechanism."""
    if not settings.kafka_sasl_mechanism:
        return None
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        mechanism=settings.kafka_sasl_mechanism,
    )


def raw_topic(
    app: faust.App, name: str, *more_names: str, **options: object
) -> faust.TopicT:
    """A topic (or several) whose keys and values stay bytes, decoded by the envelope."""
    return app.topic(
        name,
        *more_names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        **options,
    )


async def decode_or_dead_letter(
    app: faust.App, event: faust.EventT, *, consumer: str
) -> Received | None:
    """The decoded record, or None after sending it to its dead-letter topic."""
    message = event.message
    headers = list(message.headers.items()) if isinstance(message.headers, dict) else list(
        message.headers or ()
    )
    try:
        return decode(key=message.key, value=message.value, headers=headers)
    except EnvelopeError as error:
        await dead_letter(app, event, reason=str(error), consumer=consumer)
        return None


async def dead_letter(
    app: faust.App, event: faust.EventT, *, reason: str, consumer: str
) -> None:
    """Copy the record being processed to `<topic>.dlq` with the reason in headers."""
    message = event.message
    headers = list(message.headers.items()) if isinstance(message.headers, dict) else list(
        message.headers or ()
    )
    headers += [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", message.topic.encode()),
        ("dlq_partition", str(message.partition).encode()),
        ("dlq_offset", str(message.offset).encode()),
        ("dlq_consumer", consumer.encode()),
    ]
    await raw_topic(app, f"{message.topic}.dlq").send(
        key=message.key, value=message.value, headers=headers
    )
    log.warning(
        "DEAD-LETTER record could not be processed",
        extra={
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "reason": reason,
        },
    )


Processor = Callable[[Received], Awaitable[None]]
