"""The registry's database: zones, postcodes, BINs, members in buckets, audit trail.

FerretDB's SQLite backend reads a whole table for every query (even by `_id`), so
members are spread over MEMBER_BUCKETS collections named by their id; every other
collection stays small. Each change and its events are one single-document write
with an outbox (shared/outbox.py), followed by a hint to the relay.
"""

from __future__ import annotations

import uuid
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.registry.domain import MEMBER_BUCKETS, member_bucket, utcnow
from shared import mongo
from shared.outbox import HINTS, LEASES, leased, mark_dirty, outbox_update, with_outbox

ZONES = "zones"
POSTCODES = "postcodes"
BINS = "bins"
AUDIT = "audit"
LISTINGS = "listings"
# The directory projection's state, fed from the registry's own topics only.
DIRECTORY_ZONES = "directory_zones"
DIRECTORY_BINS = "directory_bins"
DIRECTORY_COORDINATORS = "directory_coordinators"
DIRECTORY_LISTINGS = "directory_listings"
DIRECTORY = (DIRECTORY_ZONES, DIRECTORY_BINS, DIRECTORY_COORDINATORS, DIRECTORY_LISTINGS)
DUPLICATE_KEY = 11000
# Reads ask for everything in their first reply (FerretDB caps it at 16 MiB): a
# cursor left open between replies deadlocks FerretDB 1.24 against a concurrent
# write (see ensure_collections).
ONE_REPLY = 100_000


class Conflict(Exception):
    """The document changed since it was read; the caller retries or reports 409."""


def members_collection(db: AsyncDatabase, *, member_id: str) -> AsyncCollection:
    """The bucket collection holding a member."""
    return db[f"members_{member_bucket(member_id):02x}"]


def member_bucket_names() -> list[str]:
    """Every bucket collection's name."""
    return [f"members_{bucket:02x}" for bucket in range(MEMBER_BUCKETS)]


async def outbox_collections(db: AsyncDatabase) -> list[str]:
    """Every collection whose documents carry outboxes, for the relay's sweep."""
    existing = set(await db.list_collection_names())
    wanted = [ZONES, BINS, LISTINGS, *member_bucket_names()]
    return [name for name in wanted if name in existing]


async def ensure_collections(db: AsyncDatabase) -> None:
    """Create every collection at start-up, so that none is created while serving.

    FerretDB 1.24's SQLite backend deadlocks, for every client of the server, when
    a collection is created (an insert into a new bucket does it) while a cursor on
    the same database spans several replies (the relay's sweep of a full bucket):
    the creator holds the global metadata lock and waits for the database's
    connection, which the cursor keeps while its next batch waits for that lock.
    """
    await mongo.ensure_collections(db, [
        ZONES, POSTCODES, BINS, AUDIT, HINTS, LEASES, LISTINGS, *DIRECTORY,
        *member_bucket_names(),
    ])


async def save_zone(
    db: AsyncDatabase, *, zone: dict[str, Any], entries_for: Any
) -> str:
    """Store a zone if new or changed; returns `created`, `changed` or `unchanged`."""
    current = await db[ZONES].find_one({"_id": zone["zone"]})
    fields = {k: v for k, v in zone.items() if k != "zone"}
    if current is not None and all(current.get(k) == v for k, v in fields.items()):
        return "unchanged"
    version = (current or {}).get("version", 0) + 1
    entries = entries_for(version)
    if current is None:
        await db[ZONES].insert_one(
            with_outbox({"_id": zone["zone"], **fields, "version": version}, entries)
        )
        outcome = "created"
    else:
        update = outbox_update(entries)
        update["$set"].update(fields, version=version)
        async with leased(db, collection=ZONES, doc_id=zone["zone"]):
            await db[ZONES].update_one({"_id": zone["zone"]}, update)
        outcome = "changed"
    await mark_dirty(db, collection=ZONES)
    return outcome


async def save_postcodes(db: AsyncDatabase, *, index: dict[str, list[str]]) -> None:
    """Replace the postcode -> municipalities table."""
    await db[POSTCODES].delete_many({})
    if index:
        await db[POSTCODES].insert_many(
            [{"_id": code, "municipalities": nis} for code, nis in sorted(index.items())]
        )


async def find_postcode(db: AsyncDatabase, *, postcode: str) -> list[str]:
    """The municipalities (NIS codes) of a postcode."""
    found = await db[POSTCODES].find_one({"_id": postcode})
    return found["municipalities"] if found else []


async def find_zone(db: AsyncDatabase, *, zone: str) -> dict[str, Any] | None:
    """One zone with its municipalities and units."""
    return await db[ZONES].find_one({"_id": zone}, {"outbox": 0})


async def list_zones(db: AsyncDatabase, *, province: str | None) -> list[dict[str, Any]]:
    """Zones, optionally of one province, without their unit lists."""
    query = {"province_nis": province} if province else {}
    zones = await db[ZONES].find(
        query, {"outbox": 0}, batch_size=ONE_REPLY
    ).to_list(None)
    return sorted(zones, key=lambda z: (len(z["_id"]), z["_id"]))


async def insert_bin(
    db: AsyncDatabase, *, document: dict[str, Any], entries: list[dict[str, Any]]
) -> None:
    """Store a new BIN with its first events."""
    await db[BINS].insert_one(with_outbox(document, entries))
    await mark_dirty(db, collection=BINS)


async def find_bin(db: AsyncDatabase, *, bin_id: str) -> dict[str, Any] | None:
    """One BIN that has not been removed."""
    found = await db[BINS].find_one({"_id": bin_id}, {"outbox": 0})
    return None if found is None or found.get("removed") else found


async def list_bins(db: AsyncDatabase, *, zone: str | None) -> list[dict[str, Any]]:
    """The BINs of a zone, or all."""
    query: dict[str, Any] = {"zone": zone} if zone else {}
    found = await db[BINS].find(
        query, {"outbox": 0}, batch_size=ONE_REPLY
    ).to_list(None)
    return [b for b in found if not b.get("removed")]


async def update_bin(
    db: AsyncDatabase,
    *,
    bin_id: str,
    version: int,
    changes: dict[str, Any],
    entries: list[dict[str, Any]],
) -> None:
    """Apply a change if the BIN is still at `version`; Conflict otherwise."""
    update = outbox_update(entries)
    update["$set"].update(changes)
    async with leased(db, collection=BINS, doc_id=bin_id):
        result = await db[BINS].update_one({"_id": bin_id, "version": version}, update)
    if result.matched_count != 1:
        raise Conflict(bin_id)
    await mark_dirty(db, collection=BINS)


async def insert_members(
    db: AsyncDatabase, *, documents: list[dict[str, Any]]
) -> tuple[int, int]:
    """Store new members (each with its outbox); returns (inserted, already there)."""
    by_bucket: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        name = members_collection(db, member_id=document["_id"]).name
        by_bucket.setdefault(name, []).append(document)
    inserted = duplicates = 0
    for name, batch in by_bucket.items():
        try:
            result = await db[name].insert_many(batch, ordered=False)
            inserted += len(result.inserted_ids)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(item.get("code") != DUPLICATE_KEY for item in errors):
                raise
            duplicates += len(errors)
            inserted += error.details.get("nInserted", len(batch) - len(errors))
        await mark_dirty(db, collection=name)
    return inserted, duplicates


async def insert_member(db: AsyncDatabase, *, document: dict[str, Any]) -> bool:
    """Store one new member; False if that id exists already."""
    collection = members_collection(db, member_id=document["_id"])
    try:
        await collection.insert_one(document)
    except DuplicateKeyError:
        return False
    await mark_dirty(db, collection=collection.name)
    return True


async def find_member(db: AsyncDatabase, *, member_id: str) -> dict[str, Any] | None:
    """One member's stored record (personal data still sealed)."""
    collection = members_collection(db, member_id=member_id)
    return await collection.find_one({"_id": member_id}, {"outbox": 0})


async def update_member(
    db: AsyncDatabase,
    *,
    member_id: str,
    version: int,
    changes: dict[str, Any],
    removals: list[str] | None = None,
    entries: list[dict[str, Any]],
) -> None:
    """Apply a change if the member is still at `version`; Conflict otherwise."""
    update = outbox_update(entries)
    update["$set"].update(changes)
    if removals:
        update["$unset"] = {field: "" for field in removals}
    collection = members_collection(db, member_id=member_id)
    async with leased(db, collection=collection.name, doc_id=member_id):
        result = await collection.update_one(
            {"_id": member_id, "version": version}, update
        )
    if result.matched_count != 1:
        raise Conflict(member_id)
    await mark_dirty(db, collection=collection.name)


async def list_members_of_bin(db: AsyncDatabase, *, bin_id: str) -> list[dict[str, Any]]:
    """The members of one BIN, without their sealed personal data."""
    existing = set(await db.list_collection_names())
    found: list[dict[str, Any]] = []
    projection = {"outbox": 0, "personal": 0, "contacts": 0, "email_index": 0}
    for name in member_bucket_names():
        if name in existing:
            found += await db[name].find(
                {"bin_id": bin_id}, projection, batch_size=ONE_REPLY
            ).to_list(None)
    return found


async def append_audit(
    db: AsyncDatabase,
    *,
    actor: str,
    action: str,
    target_kind: str,
    target_ids: list[str],
    fields: list[str] | None = None,
    rows: int | None = None,
) -> None:
    """Record who read or changed whose data: identifiers only, no personal data."""
    entry = {
        "_id": uuid.uuid4().hex,
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "target_kind": target_kind,
        "target_ids": target_ids,
        "fields": fields or [],
    }
    if rows is not None:
        entry["rows"] = rows
    await db[AUDIT].insert_one(entry)


async def list_audit(db: AsyncDatabase, *, target_id: str | None) -> list[dict[str, Any]]:
    """Audit entries, optionally those about one target, newest first."""
    query = {"target_ids": target_id} if target_id else {}
    entries = await db[AUDIT].find(
        query, {"_id": 0}, batch_size=ONE_REPLY
    ).to_list(None)
    return sorted(entries, key=lambda e: e["at"], reverse=True)


async def find_listing(db: AsyncDatabase, *, listing_id: str) -> dict[str, Any] | None:
    """A police contact's or prevention officer's stored listing (details sealed)."""
    return await db[LISTINGS].find_one({"_id": listing_id}, {"outbox": 0})


async def save_listing(
    db: AsyncDatabase,
    *,
    document: dict[str, Any],
    version: int,
    entries: list[dict[str, Any]],
) -> None:
    """Store a listing at `version` + 1 if it is still at `version`; Conflict otherwise."""
    if version == 0:
        try:
            await db[LISTINGS].insert_one(with_outbox(document, entries))
        except DuplicateKeyError:
            raise Conflict(document["_id"]) from None
    else:
        update = outbox_update(entries)
        update["$set"].update({k: v for k, v in document.items() if k != "_id"})
        async with leased(db, collection=LISTINGS, doc_id=document["_id"]):
            result = await db[LISTINGS].update_one(
                {"_id": document["_id"], "version": version}, update
            )
        if result.matched_count != 1:
            raise Conflict(document["_id"])
    await mark_dirty(db, collection=LISTINGS)


async def put_directory_state(
    db: AsyncDatabase, *, collection: str, document: dict[str, Any]
) -> bool:
    """Keep a projected record unless a newer version is there; False if older."""
    current = await db[collection].find_one({"_id": document["_id"]}, {"version": 1})
    if current is not None and current.get("version", 0) > document["version"]:
        return False
    await db[collection].replace_one({"_id": document["_id"]}, document, upsert=True)
    return True


async def drop_directory_state(
    db: AsyncDatabase, *, collection: str, key: str
) -> None:
    """Forget a projected record (a tombstone, or a member who is no coordinator)."""
    await db[collection].delete_one({"_id": key})


async def read_directory_state(db: AsyncDatabase) -> dict[str, list[dict[str, Any]]]:
    """Everything the directory projection holds, by collection."""
    return {
        name: await db[name].find({}, batch_size=ONE_REPLY).to_list(None)
        for name in DIRECTORY
    }
