"""Storage of the messaging service: alerts and mails with their outbox, status,
attachments and sent keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import Binary
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared import outbox
from shared.events import AlertAccepted

ALERTS = "alerts"
MAILS = "mails"
# Alerts and mails share one id space: the fan-out, the senders' idempotency keys,
# the status and the reply relay all know a message by its id alone.
MESSAGE_IDS = "message_ids"
ATTACHMENTS = "mail_attachments"
STATUS = "alert_status"


class AlertExists(Exception):
    """An alert with this id was accepted before."""


def alert_document(event: AlertAccepted) -> dict[str, Any]:
    """The stored form of an accepted alert."""
    return {
        "_id": event.alert_id,
        "zone": event.zone,
        "state": "active",
        "event": event.model_dump(mode="json"),
        "revisions": [],
        "accepted_at": event.accepted_at,
    }


async def claim_message_id(db: AsyncDatabase, *, message_id: str, kind: str) -> None:
    """Reserve an id for one alert or mail; AlertExists if either kind holds it.

    The claim is written first and stays, so that of two messages sent with the
    same id at once only one goes out. Messages stored before claims existed are
    found in their own collections.
    """
    for collection in (ALERTS, MAILS):
        if await db[collection].find_one({"_id": message_id}, {"_id": 1}):
            raise AlertExists(message_id)
    try:
        await db[MESSAGE_IDS].insert_one({"_id": message_id, "kind": kind})
    except DuplicateKeyError:
        raise AlertExists(message_id) from None


async def insert_alert_with_outbox(
    db: AsyncDatabase, *, event: AlertAccepted, topic: str
) -> None:
    """Store a new alert and its event for `topic` at once; AlertExists if reused."""
    entries = [outbox.entry(topic=topic, key=event.zone, event=event)]
    await claim_message_id(db, message_id=event.alert_id, kind="alert")
    try:
        await db[ALERTS].insert_one(outbox.with_outbox(alert_document(event), entries))
    except DuplicateKeyError:
        raise AlertExists(event.alert_id) from None
    await outbox.mark_dirty(db, collection=ALERTS)


async def find_alert(db: AsyncDatabase, *, alert_id: str) -> dict[str, Any] | None:
    """The stored alert, without its outbox."""
    return await db[ALERTS].find_one({"_id": alert_id}, {"outbox": 0})


async def revise_alert_with_outbox(
    db: AsyncDatabase, *, original_id: str, event: AlertAccepted, topic: str
) -> bool:
    """Record an update or cancel on its alert with the event, in one write.

    Returns False when the alert is unknown or already cancelled.
    """
    update = outbox.outbox_update(
        [outbox.entry(topic=topic, key=event.zone, event=event)]
    )
    state = "cancelled" if event.action == "cancel" else "updated"
    update["$set"] = {**update["$set"], "state": state}
    if event.action == "update":
        update["$set"]["event.texts"] = event.model_dump(mode="json")["texts"]
    update["$push"]["revisions"] = {
        "alert_id": event.alert_id,
        "action": event.action,
        "accepted_at": event.accepted_at,
    }
    async with outbox.leased(db, collection=ALERTS, doc_id=original_id):
        result = await db[ALERTS].update_one(
            {"_id": original_id, "state": {"$ne": "cancelled"}}, update
        )
    if result.modified_count != 1:
        return False
    await outbox.mark_dirty(db, collection=ALERTS)
    return True


async def save_status_summaries(
    db: AsyncDatabase, *, summaries: list[dict[str, Any]]
) -> None:
    """Replace the status documents of some alerts."""
    if summaries:
        await db[STATUS].bulk_write(
            [ReplaceOne({"_id": s["alert_id"]}, s, upsert=True) for s in summaries],
            ordered=False,
        )


async def find_status(db: AsyncDatabase, *, alert_id: str) -> dict[str, Any] | None:
    """The status document of one alert."""
    return await db[STATUS].find_one({"_id": alert_id})


async def save_attachments(
    db: AsyncDatabase, *, mail_id: str, attachments: list[tuple[str, str, str, bytes]]
) -> None:
    """Store a mail's attachments (id, filename, type, bytes) before the mail itself.

    Stored first, so that no delivery can name an attachment that is not there, and
    only inserted, so that no request can replace another mail's files. A mail
    refused afterwards leaves its attachments behind, unreferenced.
    """
    if attachments:
        await db[ATTACHMENTS].insert_many(
            [
                {
                    "_id": attachment_id,
                    "mail_id": mail_id,
                    "filename": filename,
                    "content_type": content_type,
                    "data": Binary(data),
                }
                for attachment_id, filename, content_type, data in attachments
            ]
        )


async def load_attachment(db: AsyncDatabase, *, attachment_id: str) -> bytes | None:
    """The bytes of one stored attachment."""
    doc = await db[ATTACHMENTS].find_one({"_id": attachment_id}, {"data": 1})
    return bytes(doc["data"]) if doc else None


async def insert_mail_with_outbox(
    db: AsyncDatabase,
    *,
    document: dict[str, Any],
    events: list[AlertAccepted],
    topic: str,
) -> None:
    """Store a new mail with one event per zone it reaches; AlertExists if reused."""
    entries = [outbox.entry(topic=topic, key=e.zone, event=e) for e in events]
    await claim_message_id(db, message_id=document["_id"], kind="mail")
    try:
        await db[MAILS].insert_one(outbox.with_outbox(document, entries))
    except DuplicateKeyError:
        raise AlertExists(document["_id"]) from None
    await outbox.mark_dirty(db, collection=MAILS)


async def find_mail(db: AsyncDatabase, *, mail_id: str) -> dict[str, Any] | None:
    """The stored mail, without its outbox."""
    return await db[MAILS].find_one({"_id": mail_id}, {"outbox": 0})


def sent_collection(channel: str) -> str:
    """The collection of idempotency keys a channel's sender has handed over."""
    return f"sent_{channel}"


async def load_sent_keys(
    db: AsyncDatabase, *, channel: str, since: datetime
) -> set[str]:
    """The idempotency keys handed over since a moment."""
    cursor = db[sent_collection(channel)].find({"at": {"$gte": since}}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


async def record_sent_keys(
    db: AsyncDatabase, *, channel: str, keys: list[str], at: datetime
) -> None:
    """Remember idempotency keys as handed over; keys already there stay as they are."""
    if not keys:
        return
    try:
        await db[sent_collection(channel)].insert_many(
            [{"_id": key, "at": at} for key in keys], ordered=False
        )
    except BulkWriteError as error:
        # A key recorded before a crash is already there: that is the point.
        if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
            raise
