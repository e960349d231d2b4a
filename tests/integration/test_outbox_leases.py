"""The outbox on the real FerretDB and Kafka: writers changing a document while the
relay publishes and clears its outbox lose neither a change nor an event.

FerretDB 1.24 (SQLite) applies an update as a read followed by a write that other
writers can come between; without the leases of shared/outbox.py the relay's clearing
overwrites changes that land meanwhile.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from shared import catalogue, outbox
from shared.envelope import utcnow
from shared.kafka import ensure_topics, new_producer
from shared.mongo import new_client
from shared.settings import ServiceSettings
from tests.conftest import unique

pytestmark = pytest.mark.timeout(300)
WRITERS = 4
CHANGES = 25


def raw_entry(topic: str, key: str, n: int) -> dict[str, object]:
    """An outbox entry whose body says which change made it."""
    return {
        "id": unique("event"), "topic": topic, "key": key, "type": "test.change",
        "body": f'{{"change": {n}}}', "created_at": utcnow(),
    }


async def read_ids(settings: ServiceSettings, topic: str, expected: int) -> list[str]:
    """The event ids on a topic, once `expected` records arrived (or 60 s passed)."""
    consumer = AIOKafkaConsumer(
        topic, **settings.kafka_client_options(), auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    ids: list[str] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(ids) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                ids += [dict(r.headers)["ce_id"].decode() for r in records]
        return ids
    finally:
        await consumer.stop()


async def test_changes_during_relay_passes_lose_no_change_and_no_event(
    platform: ServiceSettings,
) -> None:
    topic = unique("test.outbox-leases")
    await ensure_topics(platform, topics=[catalogue.Topic(
        name=topic, key="id", value="test", producer="tests", consumers=(),
        partitions=1, cleanup_policy="delete", description="outbox lease test",
    )])
    client = new_client(platform)
    db = client[unique("outbox_leases")]
    things = db["things"]
    first = raw_entry(topic, "thing", 0)
    await things.insert_one(outbox.with_outbox({"_id": "thing", "changes": 0}, [first]))
    written = [first["id"]]
    producer = new_producer(platform)
    await producer.start()
    stop = asyncio.Event()

    async def names() -> list[str]:
        return ["things"]

    relay = asyncio.create_task(outbox.run_relay(
        producer, db, collections=names, source="tests", stop=stop, idle_s=0.0,
        sweep_s=0.0,
    ))

    async def writer(w: int) -> None:
        for n in range(CHANGES):
            item = raw_entry(topic, "thing", w * 1000 + n)
            update = outbox.outbox_update([item])
            update["$inc"]["changes"] = 1
            update["$set"][f"writer_{w}"] = n + 1
            async with outbox.leased(db, collection="things", doc_id="thing"):
                await things.update_one({"_id": "thing"}, update)
            written.append(item["id"])
            await asyncio.sleep(0.002 * w)

    try:
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while (await things.find_one({"_id": "thing"}))["outbox_pending"]:
            assert loop.time() < deadline, "the relay did not clear the outbox"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await relay
        await producer.stop()
    document = await things.find_one({"_id": "thing"})
    assert document["changes"] == WRITERS * CHANGES
    assert all(document[f"writer_{w}"] == CHANGES for w in range(WRITERS))
    assert await db[outbox.LEASES].count_documents({}) == 0
    published = await read_ids(platform, topic, len(written))
    # Every event is there; one published again after a busy pass is the same event.
    assert set(published) == set(written)
    await client.drop_database(db.name)
    await client.close()


async def test_a_lease_left_by_a_killed_holder_expires_and_a_held_one_waits(
    platform: ServiceSettings,
) -> None:
    client = new_client(platform)
    db = client[unique("outbox_leases")]
    key = outbox.lease_key("things", "dead")
    await db[outbox.LEASES].insert_one(
        {"_id": key, "owner": "killed", "expires_at": utcnow() - timedelta(seconds=1)}
    )
    async with outbox.leased(db, collection="things", doc_id="dead", wait_s=1.0):
        row = await db[outbox.LEASES].find_one({"_id": key})
        assert row["owner"] != "killed"
        with pytest.raises(outbox.LeaseBusy):
            async with outbox.leased(db, collection="things", doc_id="dead", wait_s=0.3):
                pass
    assert await db[outbox.LEASES].count_documents({}) == 0
    await client.drop_database(db.name)
    await client.close()
