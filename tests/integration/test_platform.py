"""The platform: events cross services through the real broker, bad records are parked."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from opentelemetry import trace

from shared.envelope import Received
from shared.events import ZoneSnapshot
from shared.kafka import new_producer, publish_event, run_consumer
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing, current_trace_id
from tests.conftest import unique

TOPIC = "registry.zones.v1"


def zone_event(code: str) -> ZoneSnapshot:
    return ZoneSnapshot(
        zone=code,
        name="PZ Test",
        province_nis="10000",
        province_name="Antwerpen",
        municipalities=[],
        units=["11001A00-"],
        version=1,
    )


async def test_event_crosses_services_with_its_trace_and_bad_records_go_to_the_dlq(
    platform: ServiceSettings,
) -> None:
    configure_tracing(service="test", otlp_endpoint=None)
    producer = new_producer(platform)
    await producer.start()
    code = unique("zone")
    group = unique("analytics-test")
    received: list[tuple[Received, str | None]] = []
    stop = asyncio.Event()

    async def handler(record: Received) -> None:
        if record.key and record.key.startswith(code):
            received.append((record, current_trace_id()))
            if len(received) == 2:
                stop.set()

    consumer_task = asyncio.create_task(
        run_consumer(platform, topics=[TOPIC], group_id=group, handler=handler,
                     producer=producer, stop=stop)
    )
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("registry publishes"):
        sent_trace = current_trace_id()
        await publish_event(producer, topic=TOPIC, key=code, event=zone_event(code),
                            source="registry")
    # A record with a body that is not JSON, then one whose body breaks the schema.
    await producer.send_and_wait(
        TOPIC, key=f"{code}-bad".encode(), value=b"{not json",
        headers=[("ce_specversion", b"1.0"), ("ce_id", b"x1"), ("ce_source", b"t"),
                 ("ce_type", ZoneSnapshot.EVENT_TYPE.encode())],
    )
    await producer.send_and_wait(
        TOPIC, key=f"{code}-bad2".encode(), value=b'{"zone": 5}',
        headers=[("ce_specversion", b"1.0"), ("ce_id", b"x2"), ("ce_source", b"t"),
                 ("ce_type", ZoneSnapshot.EVENT_TYPE.encode())],
    )
    await publish_event(producer, topic=TOPIC, key=f"{code}-after",
                        event=zone_event(f"{code}-after"), source="registry")
    await asyncio.wait_for(consumer_task, 60)

    first, trace_seen = received[0]
    assert isinstance(first.event, ZoneSnapshot) and first.event.zone == code
    assert first.envelope.source == "registry"
    assert trace_seen == sent_trace, "the consumer continues the producer's trace"
    assert received[1][0].key == f"{code}-after", "the consumer went on after bad records"

    dlq = AIOKafkaConsumer(f"{TOPIC}.dlq", **platform.kafka_client_options(),
                           auto_offset_reset="earliest", group_id=unique("dlq-reader"))
    await dlq.start()
    reasons = {}
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(reasons) < 2 and asyncio.get_running_loop().time() < deadline:
            batches = await dlq.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.key and record.key.decode().startswith(f"{code}-bad"):
                        reasons[record.key.decode()] = dict(record.headers)
    finally:
        await dlq.stop()
        await producer.stop()
    assert b"not JSON" in reasons[f"{code}-bad"]["dlq_reason"]
    assert b"zone" in reasons[f"{code}-bad2"]["dlq_reason"]
    assert reasons[f"{code}-bad2"]["dlq_consumer"] == group.encode()
