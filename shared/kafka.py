"""Kafka helpers: the idempotent producer, the dead-lettering consumer, topic set-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from shared import catalogue
from shared.envelope import EnvelopeError, Received, attribute_headers, decode, encode
from shared.events import Event
from shared.settings import ServiceSettings
from shared.tracing import consuming_span

log = logging.getLogger("bin.kafka")

TOPIC_ALREADY_EXISTS = 36


class Reject(ValueError):
    """Raised by a handler for a record that is valid JSON but cannot be processed."""


def new_producer(settings: ServiceSettings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (`acks=all`)."""
    options: dict[str, object] = {
        **settings.kafka_client_options(),
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 15000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def publish_event(
    producer: AIOKafkaProducer,
    *,
    topic: str,
    key: str,
    event: Event,
    source: str,
    event_id: str | None = None,
) -> None:
    """Send one event to Kafka and wait until the broker has it."""
    body, headers = encode(event, source=source, subject=key, event_id=event_id)
    await producer.send_and_wait(topic, value=body, key=key.encode(), headers=headers)


async def publish_tombstone(
    producer: AIOKafkaProducer,
    *,
    topic: str,
    key: str,
    event_type: str,
    source: str,
    event_id: str | None = None,
) -> None:
    """Send a tombstone (no body) so that compaction removes the key."""
    headers = attribute_headers(
        event_type=event_type, source=source, subject=key, event_id=event_id
    )
    await producer.send_and_wait(topic, value=None, key=key.encode(), headers=headers)


async def send_to_dead_letter(
    producer: AIOKafkaProducer, *, record: ConsumerRecord, reason: str, consumer: str
) -> None:
    """Copy a record that cannot be processed to `<topic>.dlq`, the reason in headers."""
    headers = list(record.headers or ()) + [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", record.topic.encode()),
        ("dlq_partition", str(record.partition).encode()),
        ("dlq_offset", str(record.offset).encode()),
        ("dlq_consumer", consumer.encode()),
    ]
    await producer.send_and_wait(
        f"{record.topic}.dlq", value=record.value, key=record.key, headers=headers
    )
    log.warning(
        "DEAD-LETTER record could not be processed",
        extra={
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,
        },
    )


Handler = Callable[[Received], Awaitable[None]]


async def run_consumer(
    settings: ServiceSettings,
    *,
    topics: Iterable[str],
    group_id: str,
    handler: Handler,
    producer: AIOKafkaProducer,
    stop: asyncio.Event,
    batch_size: int = 500,
    on_idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Consume topics from the last committed offset until `stop` is set.

    Records that cannot be decoded or that the handler rejects go to their
    dead-letter topic; the offset is committed only after a batch is handled.
    """
    consumer = AIOKafkaConsumer(
        *topics,
        **settings.kafka_client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=batch_size)
            for records in batches.values():
                for record in records:
                    await handle_record(
                        record, handler=handler, producer=producer, consumer=group_id
                    )
            if batches:
                await consumer.commit()
            elif on_idle is not None:
                await on_idle()
    finally:
        await consumer.stop()


async def handle_record(
    record: ConsumerRecord, *, handler: Handler, producer: AIOKafkaProducer, consumer: str
) -> None:
    """Decode one record and hand it over; dead-letter it if that fails."""
    try:
        received = decode(key=record.key, value=record.value, headers=record.headers)
    except EnvelopeError as error:
        await send_to_dead_letter(
            producer, record=record, reason=str(error), consumer=consumer
        )
        return
    with consuming_span(f"{record.topic} process", received.headers):
        try:
            await handler(received)
        except Reject as error:
            await send_to_dead_letter(
                producer, record=record, reason=str(error), consumer=consumer
            )


async def ensure_topics(
    settings: ServiceSettings,
    *,
    topics: Iterable[catalogue.Topic] | None = None,
    replication_factor: int = 1,
) -> list[str]:
    """Create the catalogue's topics that do not exist yet; returns those created."""
    wanted = list(topics if topics is not None else catalogue.all_topics())
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=t.name,
                        num_partitions=t.partitions,
                        replication_factor=replication_factor,
                        topic_configs=t.all_configs(),
                    )
                    for t in missing
                ]
            )
            for name, code, *_ in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name} failed with code {code}")
        return [t.name for t in missing]
    finally:
        await admin.close()


async def kafka_unreachable(settings: ServiceSettings, *, timeout_s: float = 2.0) -> str:
    """Why the broker cannot be reached, or an empty string when it can."""
    client = AIOKafkaClient(
        **settings.kafka_client_options(), request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return ""
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        return f"kafka unreachable: {type(error).__name__}"
    finally:
        await client.close()
