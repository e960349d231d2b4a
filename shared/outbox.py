"""The transactional outbox: an event is stored inside the document it describes.

A change and its events are one atomic single-document write (FerretDB has no
transactions). The relay publishes pending entries with the idempotent producer and
only then removes them, so a relay killed in between publishes them again on restart
with the same event ids: consumers, which are idempotent, count nothing twice.

FerretDB 1.24 (SQLite) applies an update by reading the document and writing it back
whole, in two steps that other writers can come between: a change landing while the
relay clears the same document's outbox would be overwritten, event and all. So every
update of a document that carries an outbox, and the relay's clearing, holds a lease
on that document (`leased`): a row in a small collection whose unique `_id` makes
taking it atomic. A lease left by a killed process expires after LEASE_S. MongoDB
applies updates atomically and does not need the leases; they cost it two small
writes per change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.envelope import attribute_headers, utcnow
from shared.events import Event
from shared.mongo import ensure_collections

log = logging.getLogger("bin.outbox")
# FerretDB 1.24 (SQLite) holds one connection per statement of an update command
# until the command ends, and a database has 100: a command of more statements waits
# for itself forever and wedges the database for every client.
CLEAR_CHUNK = 50
LEASES = "outbox_leases"
# Far longer than any one update takes; how long a killed holder blocks its document.
LEASE_S = 10.0
LEASE_WAIT_S = 5.0
RELAY_LEASE_PAUSES_S = (0.005, 0.02, 0.05)
DUPLICATE_KEY = 11000


class LeaseBusy(Exception):
    """A document stayed leased by another writer for longer than a change may wait."""


def lease_key(collection: str, doc_id: Any) -> str:
    """The `_id` of the lease on one document."""
    return f"{collection}/{doc_id}"


async def take_leases(db: AsyncDatabase, keys: list[str]) -> set[str]:
    """Take the free leases among `keys` at once; returns those taken.

    A lease past its expiry is taken over: its holder died.
    """
    if not keys:
        return set()
    owner = uuid.uuid4().hex
    now = utcnow()
    rows = [{"_id": key, "owner": owner, "expires_at": now + timedelta(seconds=LEASE_S)}
            for key in keys]
    try:
        await db[LEASES].insert_many(rows, ordered=False)
        return set(keys)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(item.get("code") != DUPLICATE_KEY for item in errors):
            raise
        busy = {keys[item["index"]] for item in errors}
    held = await db[LEASES].find({"_id": {"$in": sorted(busy)}}).to_list(None)
    stale = [row for row in held if row["expires_at"].replace(tzinfo=now.tzinfo) < now]
    for row in stale:
        # Removes only the dead holder's row; a lease taken over meanwhile stays.
        await db[LEASES].delete_one({"_id": row["_id"], "owner": row["owner"]})
        try:
            await db[LEASES].insert_one({**rows[keys.index(row["_id"])]})
            busy.discard(row["_id"])
        except DuplicateKeyError:
            pass
    return set(keys) - busy


async def release_leases(db: AsyncDatabase, keys: set[str] | list[str]) -> None:
    """Give leases back."""
    if len(keys) == 1:
        # A filter of `_id` alone is the one FerretDB looks up without a scan.
        await db[LEASES].delete_one({"_id": next(iter(keys))})
    elif keys:
        await db[LEASES].delete_many({"_id": {"$in": sorted(keys)}})


@asynccontextmanager
async def leased(
    db: AsyncDatabase, *, collection: str, doc_id: Any, wait_s: float = LEASE_WAIT_S
) -> AsyncIterator[None]:
    """Hold one document against the relay and other writers while changing it."""
    key = lease_key(collection, doc_id)
    deadline = asyncio.get_running_loop().time() + wait_s
    pause = 0.005
    while not await take_leases(db, [key]):
        if asyncio.get_running_loop().time() >= deadline:
            raise LeaseBusy(collection)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)
    try:
        yield
    finally:
        await release_leases(db, [key])


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
    """Publish the pending entries of up to `batch` documents and clear them; returns
    the entries cleared (documents a writer held meanwhile wait for the next pass)."""
    # One reply and a closed cursor: FerretDB 1.24 (SQLite) deadlocks when a write
    # takes its metadata lock while a cursor waits between replies.
    documents = await collection.find(
        {"outbox_pending": True}, {"outbox": 1, "outbox_seq": 1},
        limit=batch, batch_size=batch,
    ).to_list(None)
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
    # Published; now cleared under leases, so that no writer comes between the read
    # and the write of FerretDB's update. A document a writer holds keeps its outbox
    # and is published again on the next pass, with the same event ids.
    keys = {lease_key(collection.name, d["_id"]): d for d in documents}
    taken = await take_leases(collection.database, list(keys))
    for pause in RELAY_LEASE_PAUSES_S:
        if len(taken) == len(keys):
            break
        # A writer holds a lease for one update: a moment later it is free.
        await asyncio.sleep(pause)
        taken |= await take_leases(collection.database, sorted(set(keys) - taken))
    cleared = [keys[key] for key in sorted(taken)]
    try:
        await _clear(collection, cleared)
    finally:
        await release_leases(collection.database, taken)
    return sum(len(document.get("outbox", [])) for document in cleared) or len(cleared)


async def _clear(collection: AsyncCollection, documents: list[dict[str, Any]]) -> None:
    """Remove the published entries from documents that the caller holds leased."""
    # One update_many per outbox_seq value (nearly always one): a single statement
    # (see CLEAR_CHUNK) and a single scan, as FerretDB's SQLite backend scans the
    # whole collection for every update statement, even one by _id.
    by_seq: dict[Any, list[Any]] = {}
    for document in documents:
        by_seq.setdefault(document.get("outbox_seq"), []).append(document["_id"])
    matched = 0
    for seq, ids in by_seq.items():
        for start in range(0, len(ids), CLEAR_CHUNK * 10):
            chunk = ids[start : start + CLEAR_CHUNK * 10]
            result = await collection.update_many(
                {"_id": {"$in": chunk}, "outbox_seq": seq},
                {"$set": {"outbox": [], "outbox_pending": False}},
            )
            matched += result.matched_count
    if matched < len(documents):
        # A writer added entries meanwhile: remove only what was published.
        # FerretDB's $pull takes no conditions; $pullAll removes exact entries.
        read = {document["_id"]: document for document in documents}
        changed = await collection.find(
            {"_id": {"$in": list(read)}, "outbox_pending": True}, {"outbox_seq": 1},
            batch_size=len(read),
        ).to_list(None)
        for current in changed:
            published = read[current["_id"]]
            if current.get("outbox_seq") != published.get("outbox_seq"):
                await collection.update_one(
                    {"_id": current["_id"]},
                    {"$pullAll": {"outbox": published.get("outbox", [])}},
                )


HINTS = "outbox_hints"


async def mark_dirty(db: AsyncDatabase, *, collection: str) -> None:
    """Tell the relay that a collection has pending entries (a hint, not the truth).

    FerretDB's SQLite backend scans a whole table for every query, so the relay
    looks only where writers point it. A writer that dies before leaving its hint
    loses nothing: the relay's periodic sweep finds every pending outbox anyway.
    """
    try:
        await db[HINTS].update_one(
            {"_id": collection}, {"$set": {"at": utcnow()}}, upsert=True
        )
    except DuplicateKeyError:
        pass  # a concurrent writer's upsert created the hint first: it is there


async def run_relay(
    producer: AIOKafkaProducer,
    db: AsyncDatabase,
    *,
    collections: Callable[[], Awaitable[list[str]]],
    source: str,
    stop: asyncio.Event,
    idle_s: float = 0.05,
    sweep_s: float = 30.0,
) -> None:
    """Publish outboxes until `stop` is set: hinted collections at once, all of them
    at start and every `sweep_s` seconds."""
    next_sweep = 0.0
    loop = asyncio.get_running_loop()
    leases_ready = False
    while not stop.is_set():
        try:
            if not leases_ready:
                # Created before serving: FerretDB 1.24 can deadlock when a
                # collection is created while a cursor spans several replies.
                await ensure_collections(db, [LEASES])
                leases_ready = True
            if loop.time() >= next_sweep:
                names = await collections()
                next_sweep = loop.time() + sweep_s
            else:
                hints = await db[HINTS].find({}, {"_id": 1}, batch_size=1000).to_list(
                    None
                )
                names = [hint["_id"] for hint in hints]
                if names:
                    await db[HINTS].delete_many({"_id": {"$in": names}})
            sent = 0
            for name in names:
                while count := await relay_once(producer, db[name], source=source):
                    sent += count
        except Exception as error:  # noqa: BLE001 - retried on the next pass
            log.warning("RETRY outbox relay pass failed", extra={"reason": type(error).__name__})
            next_sweep = 0.0
            await asyncio.sleep(1.0)
            continue
        if sent == 0:
            try:
                await asyncio.wait_for(stop.wait(), idle_s)
            except TimeoutError:
                pass


def decode_body(item: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON body of an outbox entry, for tests and tools."""
    return json.loads(item["body"]) if item["body"] is not None else None
