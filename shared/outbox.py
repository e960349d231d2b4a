"""The transactional outbox: an event is stored inside the document it describes.

A change and its events are one atomic single-document write (FerretDB has no
transactions). The relay publishes pending entries with the idempotent producer and
only then removes them, so a relay killed in between publishes them again on restart
with the same event ids: consumers, which are idempotent, count nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from shared.envelope import attribute_headers, utcnow
from shared.events import Event

log = logging.getLogger("bin.outbox")


def entry(*, topic: str, key: str, event: Event) -> dict[str, Any]:
    """An outbox entry holding one event."""
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "key": key,
        "type": event.EVENT_TYPE,
        "body": event.model_dump_json(),
        "created_at": utcnow(),
    }


def tombstone_entry(*, topic: str, key: str, event_type: str) -> dict[str, Any]:
    """An outbox entry for a tombstone: the key's record is to be compacted away."""
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "key": key,
        "type": event_type,
        "body": None,
        "created_at": utcnow(),
    }


def outbox_update(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The update operators that append entries to a document's outbox."""
    return {
        "$push": {"outbox": {"$each": entries}},
        "$set": {"outbox_pending": True},
        "$inc": {"outbox_seq": 1},
    }


def with_outbox(document: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A new document that carries its first outbox entries."""
    return {**document, "outbox": entries, "outbox_pending": True, "outbox_seq": 1}


async def relay_once(
    producer: AIOKafkaProducer,
    collection: AsyncCollection,
    *,
    source: str,
    batch: int = 500,
) -> int:
    """Publish the pending entries of up to `batch` documents; returns entries sent."""
    documents = await collection.find(
        {"outbox_pending": True}, {"outbox": 1, "outbox_seq": 1}
    ).to_list(batch)
    if not documents:
        return 0
    sends = []
    for document in documents:
        for item in document.get("outbox", []):
            body = item["body"].encode() if item["body"] is not None else None
            headers = attribute_headers(
                event_type=item["type"], source=source, subject=item["key"],
                event_id=item["id"],
            )
            sends.append(
                await producer.send(
                    item["topic"], value=body, key=item["key"].encode(), headers=headers
                )
            )
    await asyncio.gather(*sends)
    operations = [op for document in documents for op in _clear(document)]
    await collection.bulk_write(operations, ordered=True)
    return len(sends)


def _clear(document: dict[str, Any]) -> list[UpdateOne]:
    """Remove what was published; entries added meanwhile stay for the next pass."""
    seq = document.get("outbox_seq")
    return [
        UpdateOne(
            {"_id": document["_id"], "outbox_seq": seq},
            {"$set": {"outbox": [], "outbox_pending": False}},
        ),
        UpdateOne(
            {"_id": document["_id"], "outbox_seq": {"$ne": seq}},
            # FerretDB's $pull takes no conditions; $pullAll removes exact entries.
            {"$pullAll": {"outbox": document.get("outbox", [])}},
        ),
    ]


async def run_relay(
    producer: AIOKafkaProducer,
    collections: list[AsyncCollection],
    *,
    source: str,
    stop: asyncio.Event,
    idle_s: float = 0.05,
) -> None:
    """Publish outboxes until `stop` is set, polling briefly when there is nothing."""
    while not stop.is_set():
        sent = 0
        for collection in collections:
            try:
                sent += await relay_once(producer, collection, source=source)
            except Exception as error:  # noqa: BLE001 - retried on the next pass
                log.warning(
                    "RETRY outbox relay pass failed",
                    extra={"reason": type(error).__name__, "path": collection.name},
                )
                await asyncio.sleep(1.0)
        if sent == 0:
            try:
                await asyncio.wait_for(stop.wait(), idle_s)
            except TimeoutError:
                pass


def decode_body(item: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON body of an outbox entry, for tests and tools."""
    return json.loads(item["body"]) if item["body"] is not None else None
