"""Storage of the tip line: reports, their photos, the zones learnt, spent challenges.

Nothing stored here identifies a reporter: identifiers are random UUIDs (never
ObjectIds, which carry a creation time), every time is coarsened to the hour, and
a receipt code is kept only as its public locator and an Argon2 hash.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.reports.domain import (
    ReportSubmission,
    Resolution,
    Status,
    StatusChange,
)
from services.reports.photos import CleanPhoto
from shared import outbox
from shared.events import ReportStatusChanged, ReportSubmitted, ZoneSnapshot

REPORTS = "reports"
PHOTOS = "photos"
ZONES = "zones"
SPENT = "spent_challenges"
UNZONED_KEY = "unzoned"


def new_id() -> str:
    """A random identifier that carries no time."""
    return uuid.uuid4().hex


async def ensure_indexes_db(db: AsyncDatabase) -> None:
    """Creates the indexes: a unique receipt locator, and the triage look-ups."""
    await db[REPORTS].create_index("locator", unique=True)
    await db[REPORTS].create_index([("zone", 1), ("status", 1)])
    await db[REPORTS].create_index("outbox_pending")
    await db[PHOTOS].create_index("report_id")


def _entry(*, topic: str, key: str, event: Any, hour: datetime) -> dict[str, Any]:
    # The outbox entry's own timestamp is coarsened too: it sits in the report.
    return {**outbox.entry(topic=topic, key=key, event=event), "created_at": hour}


def status_entry(report: dict[str, Any], *, hour: datetime) -> dict[str, Any]:
    """The outbox entry announcing a report's current status."""
    event = ReportStatusChanged(
        report_id=report["_id"],
        zone=report.get("zone"),
        category=report["category"],
        status=report["status"],
        outcome=report.get("outcome"),
        changed_hour=hour,
    )
    return _entry(topic=event.TOPIC, key=report["_id"], event=event, hour=hour)


def report_document(
    *,
    submission: ReportSubmission,
    resolution: Resolution,
    photo_ids: list[str],
    hour: datetime,
) -> dict[str, Any]:
    """A new report as stored, with its submitted and status events in the outbox."""
    report: dict[str, Any] = {
        "_id": new_id(),
        "category": submission.category.value,
        "location": submission.location.model_dump(),
        "signals": sorted(signal.value for signal in submission.signals),
        "text": submission.text,
        "zone": resolution.zone,
        "municipality_nis": resolution.municipality_nis,
        "province_nis": resolution.province_nis,
        "submitted_hour": hour,
        "updated_hour": hour,
        "status": Status.RECEIVED.value,
        "outcome": None,
        "closed_hour": None,
        "questions": [],
        "photo_ids": photo_ids,
        "revision": 0,
    }
    submitted = ReportSubmitted(
        report_id=report["_id"],
        zone=resolution.zone,
        province_nis=resolution.province_nis,
        municipality_nis=resolution.municipality_nis,
        category=submission.category.value,
        submitted_hour=hour,
    )
    entries = [
        _entry(
            topic=submitted.TOPIC,
            key=resolution.zone or UNZONED_KEY,
            event=submitted,
            hour=hour,
        ),
        status_entry(report, hour=hour),
    ]
    return outbox.with_outbox(report, entries)


async def insert_photos_db(
    db: AsyncDatabase, *, report_id: str, photos: list[CleanPhoto]
) -> list[str]:
    """Stores cleaned photos, one document each, and returns their ids."""
    documents = [
        {
            "_id": new_id(),
            "report_id": report_id,
            "content_type": photo.content_type,
            "data": Binary(photo.data),
            "width": photo.width,
            "height": photo.height,
        }
        for photo in photos
    ]
    if documents:
        await db[PHOTOS].insert_many(documents)
    return [document["_id"] for document in documents]


async def delete_photos_db(db: AsyncDatabase, *, report_id: str) -> None:
    """Removes every photo of a report."""
    await db[PHOTOS].delete_many({"report_id": report_id})


async def insert_report_db(
    db: AsyncDatabase, *, document: dict[str, Any], locator: str, receipt_hash: str
) -> bool:
    """Stores a new report; False when its receipt locator is already taken."""
    try:
        await db[REPORTS].insert_one(
            {**document, "locator": locator, "receipt_hash": receipt_hash}
        )
    except DuplicateKeyError:
        return False
    return True


async def find_report_by_locator_db(
    db: AsyncDatabase, *, locator: str
) -> dict[str, Any] | None:
    """The report a receipt locator belongs to, or None."""
    return await db[REPORTS].find_one({"locator": locator}, {"outbox": 0})


async def get_report_db(
    db: AsyncDatabase, *, report_id: str, zone: str | None
) -> dict[str, Any] | None:
    """A report of one zone (None: of the triage queue), or None."""
    return await db[REPORTS].find_one({"_id": report_id, "zone": zone}, {"outbox": 0})


async def list_reports_db(
    db: AsyncDatabase,
    *,
    zone: str | None,
    province: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Reports of one zone, or of the triage queue when zone is None."""
    query: dict[str, Any] = {"zone": zone}
    if province is not None:
        query["province_nis"] = province
    if status is not None:
        query["status"] = status
    projection = {"outbox": 0, "text": 0, "location": 0, "receipt_hash": 0}
    cursor = db[REPORTS].find(query, projection).sort("submitted_hour", -1)
    return await cursor.to_list(limit)


async def change_status_db(
    db: AsyncDatabase,
    *,
    report: dict[str, Any],
    change: StatusChange,
    hour: datetime,
) -> bool:
    """Applies a checked triage change with its event; False if it changed meanwhile."""
    fields: dict[str, Any] = {
        "status": change.status.value,
        "outcome": change.outcome.value if change.outcome else None,
        "updated_hour": hour,
    }
    if change.status is Status.CLOSED:
        fields["closed_hour"] = hour
    entry = status_entry({**report, **fields}, hour=hour)
    update = outbox.outbox_update([entry])
    update["$set"].update(fields)
    update["$inc"]["revision"] = 1
    async with outbox.leased(db, collection=REPORTS, doc_id=report["_id"]):
        result = await db[REPORTS].update_one(
            {"_id": report["_id"], "status": report["status"]}, update
        )
    return result.modified_count == 1


async def add_question_db(
    db: AsyncDatabase, *, report_id: str, zone: str | None, text: str, hour: datetime
) -> str | None:
    """Adds a question for the reporter; its id, or None if the report is closed."""
    question = {
        "id": new_id()[:16],
        "text": text,
        "asked_hour": hour,
        "answer": None,
        "answered_hour": None,
    }
    async with outbox.leased(db, collection=REPORTS, doc_id=report_id):
        result = await db[REPORTS].update_one(
            {"_id": report_id, "zone": zone, "status": {"$ne": Status.CLOSED.value}},
            {"$push": {"questions": question}, "$inc": {"revision": 1}},
        )
    return question["id"] if result.modified_count == 1 else None


async def answer_questions_db(
    db: AsyncDatabase,
    *,
    report: dict[str, Any],
    answers: dict[str, str],
    hour: datetime,
) -> bool:
    """Stores the reporter's answers to open questions; False (nothing written) if
    one of them is not an open question or the report changed meanwhile."""
    if report["status"] == Status.CLOSED.value:
        return False
    questions = [dict(question) for question in report.get("questions", [])]
    open_ids = {q["id"] for q in questions if q.get("answer") is None}
    if not answers or not set(answers) <= open_ids:
        return False
    for question in questions:
        if question["id"] in answers:
            question["answer"] = answers[question["id"]]
            question["answered_hour"] = hour
    # FerretDB has no positional updates: the whole list is replaced, guarded by
    # the revision read so that a concurrent change is not overwritten.
    async with outbox.leased(db, collection=REPORTS, doc_id=report["_id"]):
        result = await db[REPORTS].update_one(
            {"_id": report["_id"], "revision": report.get("revision", 0)},
            {"$set": {"questions": questions}, "$inc": {"revision": 1}},
        )
    return result.modified_count == 1


async def assign_zone_db(
    db: AsyncDatabase, *, report: dict[str, Any], zone: str, hour: datetime
) -> bool:
    """Moves a report from the triage queue to a zone, announcing it; False if gone."""
    entry = status_entry({**report, "zone": zone}, hour=hour)
    update = outbox.outbox_update([entry])
    update["$set"].update({"zone": zone, "updated_hour": hour})
    update["$inc"]["revision"] = 1
    async with outbox.leased(db, collection=REPORTS, doc_id=report["_id"]):
        result = await db[REPORTS].update_one(
            {"_id": report["_id"], "zone": None}, update
        )
    return result.modified_count == 1


async def get_photo_db(
    db: AsyncDatabase, *, report_id: str, photo_id: str
) -> dict[str, Any] | None:
    """One photo of a report, or None."""
    return await db[PHOTOS].find_one({"_id": photo_id, "report_id": report_id})


async def purge_closed_reports_db(db: AsyncDatabase, *, closed_before: datetime) -> int:
    """Deletes reports closed before a time, with their photos; returns how many."""
    found = (
        await db[REPORTS]
        .find(
            {"status": Status.CLOSED.value, "closed_hour": {"$lt": closed_before}},
            {"_id": 1, "outbox_pending": 1},
        )
        .to_list(1000)
    )
    # A report whose last event is not published yet waits for the next pass.
    ids = [doc["_id"] for doc in found if not doc.get("outbox_pending")]
    if not ids:
        return 0
    await db[PHOTOS].delete_many({"report_id": {"$in": ids}})
    result = await db[REPORTS].delete_many({"_id": {"$in": ids}})
    return result.deleted_count


def challenge_key(challenge: str) -> str:
    """What is stored of a spent challenge: its digest."""
    return hashlib.sha256(challenge.encode()).hexdigest()


async def spend_challenge_db(
    db: AsyncDatabase, *, challenge: str, expires_hour: datetime
) -> bool:
    """Marks a challenge as used; False if it was used before."""
    try:
        await db[SPENT].insert_one(
            {"_id": challenge_key(challenge), "expires_hour": expires_hour}
        )
    except DuplicateKeyError:
        return False
    return True


async def purge_spent_challenges_db(db: AsyncDatabase, *, now: datetime) -> int:
    """Forgets challenges that have expired: they are refused for their age anyway."""
    result = await db[SPENT].delete_many({"expires_hour": {"$lt": now}})
    return result.deleted_count


async def save_zone_db(db: AsyncDatabase, *, snapshot: ZoneSnapshot) -> bool:
    """Stores a zone snapshot unless a newer version is there; True if stored."""
    document = {
        "version": snapshot.version,
        "province_nis": snapshot.province_nis,
        "municipalities": [m.model_dump() for m in snapshot.municipalities],
    }
    try:
        result = await db[ZONES].update_one(
            {"_id": snapshot.zone, "version": {"$lt": snapshot.version}},
            {"$set": document},
            upsert=True,
        )
    except DuplicateKeyError:
        return False
    return result.modified_count == 1 or result.upserted_id is not None


async def delete_zone_db(db: AsyncDatabase, *, zone: str) -> None:
    """Forgets a zone that the registry removed."""
    await db[ZONES].delete_one({"_id": zone})


async def load_zones_db(db: AsyncDatabase) -> list[dict[str, Any]]:
    """Every zone known, shaped as `domain.build_place_lookup` reads them."""
    documents = await db[ZONES].find({}).to_list(None)
    return [{**document, "zone": document["_id"]} for document in documents]
