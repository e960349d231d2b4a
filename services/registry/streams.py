"""The registry's Kafka side: the outbox relay, its only producer, and the directory
projection, which reads nothing but the registry's own topics."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.database import AsyncDatabase

from services.registry import domain, store
from services.registry.settings import RegistrySettings
from shared.envelope import Received
from shared.events import BinSnapshot, DirectoryListing, MembershipSnapshot, ZoneSnapshot
from shared.kafka import Reject, new_producer, run_consumer
from shared.mongo import database, new_client
from shared.outbox import run_relay
from shared.service import stop_on_signals

log = logging.getLogger("bin.registry.relay")
directory_log = logging.getLogger("bin.registry.directory")
DIRECTORY_TOPICS = ("registry.zones.v1", "registry.bins.v1", "registry.memberships.v1",
                    "registry.directory-listings.v1")


async def _start_when_reachable(
    producer: AIOKafkaProducer, *, stop: asyncio.Event, logger: logging.Logger, role: str
) -> None:
    """Start the producer, retrying every 2 s while the broker may still be starting."""
    while not stop.is_set():
        try:
            await producer.start()
            return
        except Exception as error:  # noqa: BLE001 - the broker may still be starting
            logger.warning("RETRY cannot reach Kafka",
                           extra={"role": role, "reason": type(error).__name__})
            await asyncio.sleep(2)


async def run_outbox_relay(settings: RegistrySettings) -> None:
    """Publish every stored event of the registry until the process is told to stop."""
    stop = stop_on_signals()
    client = new_client(settings)
    db = database(client, settings)
    producer = new_producer(settings)
    await _start_when_reachable(producer, stop=stop, logger=log, role="relay")
    log.info("outbox relay started")
    try:
        await run_relay(
            producer, db, collections=lambda: store.outbox_collections(db),
            source="registry", stop=stop, sweep_s=settings.relay_sweep_seconds,
        )
    finally:
        await producer.stop()
        await client.close()


async def project_directory_record(
    db: AsyncDatabase, received: Received, *, coordinators: set[str]
) -> None:
    """Fold one record of the registry's own topics into the directory's state.

    `coordinators` are the ids the state holds as coordinators, so that the many
    memberships of plain members cost no database write.
    """
    event, key = received.event, received.key or ""
    kind = received.envelope.type
    if kind == ZoneSnapshot.EVENT_TYPE:
        if event is None:
            await store.drop_directory_state(db, collection=store.DIRECTORY_ZONES, key=key)
            return
        assert isinstance(event, ZoneSnapshot)
        await store.put_directory_state(db, collection=store.DIRECTORY_ZONES, document={
            "_id": event.zone, "province_nis": event.province_nis,
            "version": event.version})
    elif kind == BinSnapshot.EVENT_TYPE:
        if event is None:
            await store.drop_directory_state(db, collection=store.DIRECTORY_BINS, key=key)
            return
        assert isinstance(event, BinSnapshot)
        await store.put_directory_state(db, collection=store.DIRECTORY_BINS, document={
            "_id": event.bin_id, "zone": event.zone, "name": event.name,
            "status": event.status,
            "municipalities": domain.bin_municipalities(event.territory),
            "version": event.version})
    elif kind == MembershipSnapshot.EVENT_TYPE:
        coordinator = (event is not None and event.role == "coordinator"
                       and event.status == "active")
        if not coordinator:
            # The state keeps only active coordinators: stepping down drops them.
            if key in coordinators:
                await store.drop_directory_state(
                    db, collection=store.DIRECTORY_COORDINATORS, key=key)
                coordinators.discard(key)
            return
        assert isinstance(event, MembershipSnapshot)
        await store.put_directory_state(
            db, collection=store.DIRECTORY_COORDINATORS,
            document={"_id": event.member_id, "bin_id": event.bin_id,
                      "version": event.version})
        coordinators.add(event.member_id)
    elif kind == DirectoryListing.EVENT_TYPE:
        if event is None:
            await store.drop_directory_state(
                db, collection=store.DIRECTORY_LISTINGS, key=key)
            return
        assert isinstance(event, DirectoryListing)
        await store.put_directory_state(
            db, collection=store.DIRECTORY_LISTINGS,
            document={"_id": event.listing_id,
                      **event.model_dump(mode="json", exclude={"listing_id"})})
    else:
        raise Reject(f"unexpected event type {kind}")


async def run_directory(settings: RegistrySettings) -> None:
    """Keep the directory of BIN actors current from the registry's own topics."""
    stop = stop_on_signals()
    client = new_client(settings)
    db = database(client, settings)
    await store.ensure_collections(db)
    producer = new_producer(settings)
    await _start_when_reachable(producer, stop=stop, logger=directory_log,
                                role="directory")

    state = await store.read_directory_state(db)
    coordinators = {c["_id"] for c in state[store.DIRECTORY_COORDINATORS]}

    async def handle(received: Received) -> None:
        await project_directory_record(db, received, coordinators=coordinators)

    directory_log.info("directory projection started",
                       extra={"topic": ",".join(DIRECTORY_TOPICS)})
    try:
        await run_consumer(settings, topics=DIRECTORY_TOPICS,
                           group_id=settings.directory_group_id, handler=handle,
                           producer=producer, stop=stop)
    finally:
        await producer.stop()
        await client.close()
