"""The registry's outbox relay killed with SIGKILL loses nothing and duplicates
nothing that a consumer would count twice.

A change and its events are one document write; the relay publishes and only then
clears the outbox. Killed before publishing, it publishes on restart; killed between
publishing and clearing, it publishes again with the same event ids and versions,
which idempotent consumers recognise.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.registry.store import member_bucket_names
from shared.settings import ServiceSettings
from tests.builders import registry as b
from tests.integration.test_registry_support import (
    Registry,
    TopicLog,
    body,
    count,
    header,
)

pytestmark = pytest.mark.timeout(900)
OPERATOR = b.bearer(b.token("operator"))
ZONE = "ipz10"
CSV = {**OPERATOR, "content-type": "text/csv"}


async def pending_outboxes(settings: ServiceSettings, database: str) -> int:
    """How many documents still hold unpublished events."""
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_uri)
    try:
        db = client[database]
        existing = set(await db.list_collection_names())
        total = 0
        for name in ["zones", "bins", *member_bucket_names()]:
            if name in existing:
                total += await db[name].count_documents({"outbox_pending": True})
        return total
    finally:
        await client.close()


def by_version(records: list) -> dict[tuple[bytes, int | None], set[str]]:
    """The event ids seen for each (key, version); a tombstone has version None."""
    seen: dict[tuple[bytes, int | None], set[str]] = defaultdict(set)
    for record in records:
        version = None if body(record) is None else body(record)["version"]
        seen[(record.key, version)].add(header(record, "ce_id"))
    return seen


async def test_a_killed_relay_loses_nothing_and_repeats_only_known_events(
    platform: ServiceSettings,
) -> None:
    registry = Registry()
    topics = TopicLog(platform)
    await topics.mark()
    registry.start_api()
    try:
        async with httpx.AsyncClient(base_url=registry.url, timeout=120) as api:
            imported = await api.post("/v1/reference/import", headers=OPERATOR,
                                      files=b.reference_subset(ZONE))
            assert imported.status_code == 200, imported.text
            units = (await api.get(f"/v1/zones/{ZONE}/sectors")).json()["sectors"]

            # No relay yet: the changes wait in their documents' outboxes.
            bins = []
            for i in range(3):
                created = await api.post("/v1/bins", headers=OPERATOR, json=b.bin_in(
                    ZONE, units[i * 3:i * 3 + 3], status="active"))
                bins.append(created.json()["bin_id"])
            first = [b.csv_row() for _ in range(200)]
            answer = await api.post(f"/v1/bins/{bins[0]}/members/import", headers=CSV,
                                    content=b.member_csv(first))
            assert answer.json()["imported"] == 200, answer.text
            erased_id = (await api.get(f"/v1/bins/{bins[0]}/members",
                                       headers=OPERATOR)).json()[0]["member_id"]
            assert (await api.delete(f"/v1/members/{erased_id}",
                                     headers=OPERATOR)).status_code == 204
            assert await pending_outboxes(platform, registry.database) >= 203

            # The relay starts, is killed while it publishes, and starts again.
            registry.start_relay()
            await topics.wait("registry.zones.v1", [ZONE], count(1), timeout_s=60)
            second = [b.csv_row() for _ in range(1500)]
            for bin_id, rows in ((bins[1], second[:1000]), (bins[2], second[1000:])):
                answer = await api.post(f"/v1/bins/{bin_id}/members/import",
                                        headers=CSV, content=b.member_csv(rows))
                assert answer.status_code == 200, answer.text
            member_ids: list[str] = []
            for bin_id in bins:
                listed = await api.get(f"/v1/bins/{bin_id}/members", headers=OPERATOR)
                member_ids += [m["member_id"] for m in listed.json()]
            assert len(member_ids) == 1699
            await topics.wait("registry.memberships.v1", member_ids[200:], count(1),
                              timeout_s=120)
            assert registry.relay is not None
            registry.relay.kill()
            published = len(await topics.of_keys("registry.memberships.v1", member_ids))
            registry.start_relay()

            everyone = [*member_ids, erased_id]
            memberships = await topics.wait(
                "registry.memberships.v1", everyone,
                lambda rs: {(r.key, body(r)["version"]) for r in rs} >= {
                    (m.encode(), 1) for m in everyone}, timeout_s=300)
            contacts = await topics.wait(
                "registry.contacts.v1", everyone,
                lambda rs: {r.key for r in rs} >= {m.encode() for m in everyone},
                timeout_s=120)
            bin_records = await topics.wait("registry.bins.v1", bins, count(3))
            for _ in range(60):
                if await pending_outboxes(platform, registry.database) == 0:
                    break
                await asyncio.sleep(1)
            assert await pending_outboxes(platform, registry.database) == 0
    finally:
        registry.stop()

    # Nothing lost: every member, every BIN, the erasure and its tombstone.
    seen = by_version(memberships)
    assert {key for key, _ in seen} == {m.encode() for m in everyone}
    assert (erased_id.encode(), 2) in seen
    assert {key for key, _ in by_version(bin_records)} == {x.encode() for x in bins}
    assert (erased_id.encode(), None) in by_version(contacts)
    # Nothing a consumer counts twice: a repeated record repeats its event id.
    for topic_records in (memberships, contacts, bin_records):
        for versions in by_version(topic_records).values():
            assert len(versions) == 1
    repeated = len(memberships) - len(seen)
    print(f"published before the kill: {published}; repeated after it: {repeated}")
