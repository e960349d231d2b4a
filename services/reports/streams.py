"""The reports worker: outbox relay, zones learnt from the registry, periodic purge.

One process does all three because each is small: it relays the outbox of the
reports collection to `reports.*`, reads `registry.zones.v1` from its start into
the reports database (so that the API resolves places without Kafka), and deletes
closed reports once their retention has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.reports import domain, store, telemetry
from services.reports.settings import ReportsSettings
from shared import outbox
from shared.envelope import Headers, Received, utcnow
from shared.events import ZoneSnapshot
from shared.kafka import Reject, new_producer, run_consumer
from shared.mongo import database, new_client
from shared.service import stop_on_signals

log = logging.getLogger("bin.reports.worker")
SOURCE = "reports"


def zones_handler(db: AsyncDatabase):  # noqa: ANN201 - returns the handler closure
    """The consumer handler that stores zone snapshots and forgets tombstoned zones."""

    async def handle(received: Received) -> None:
        if received.event is None:
            if received.key:
                await store.delete_zone_db(db, zone=received.key)
            return
        if not isinstance(received.event, ZoneSnapshot):
            raise Reject(f"unexpected event type {received.envelope.type}")
        if await store.save_zone_db(db, snapshot=received.event):
            telemetry.record_zone_learnt()
            log.info("zone learnt", extra={"zone": received.event.zone})

    return handle


# LIMITATION: the relay still publishes within about a second of a submission, so
# whoever follows reports.submitted.v1 live learns its time more precisely than
# the stored hour, because the shared outbox relay has no way to hold entries back
# until their hour is over.
class CoarseTimeProducer:
    """Sends through a producer with the record time and `ce_time` cut to the hour.

    A Kafka record keeps the time it was produced to the millisecond, and the relay
    sends within a second of a submission: left alone, both would date a report
    far more precisely than the hour it stores.
    """

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> Any:
        """Hands one record to the producer; returns its delivery future."""
        hour = domain.coarsen_to_hour(utcnow())
        stamped = [
            (name, hour.isoformat().encode()) if name == "ce_time" else (name, data)
            for name, data in headers or []
        ]
        return await self._producer.send(
            topic,
            value=value,
            key=key,
            headers=stamped,
            timestamp_ms=int(hour.timestamp() * 1000),
        )


async def _outbox_collections() -> list[str]:
    return [store.REPORTS]


async def purge_once(db: AsyncDatabase, *, settings: ReportsSettings) -> int:
    """Deletes closed reports past retention and expired challenges; returns reports."""
    now = utcnow()
    count = await store.purge_closed_reports_db(
        db, closed_before=now - timedelta(days=settings.retention_days)
    )
    await store.purge_spent_challenges_db(db, now=now)
    if count:
        telemetry.record_purged(count=count)
        log.info("closed reports purged", extra={"count": count})
    return count


async def _purge_loop(
    db: AsyncDatabase, *, settings: ReportsSettings, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await purge_once(db, settings=settings)
        except Exception as error:  # noqa: BLE001 - retried on the next pass
            log.warning("RETRY purge failed", extra={"reason": type(error).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.purge_interval_s)


async def run_worker(settings: ReportsSettings, *, stop: asyncio.Event) -> None:
    """Runs relay, zones consumer and purge until `stop` is set."""
    client = new_client(settings)
    db = database(client, settings)
    producer = new_producer(settings)
    await producer.start()
    try:
        await store.ensure_indexes_db(db)
        # A group of its own, new at every start, so the compacted topic is read
        # from its beginning each time and no offset is shared between replicas.
        group = f"reports-zones-{uuid.uuid4().hex[:12]}"
        tasks = [
            asyncio.create_task(
                outbox.run_relay(
                    CoarseTimeProducer(producer),  # type: ignore[arg-type]
                    db,
                    collections=_outbox_collections,
                    source=SOURCE,
                    stop=stop,
                    # The API leaves no dirty hint (it would carry a precise write
                    # time); the relay sweeps the one collection often instead.
                    sweep_s=settings.relay_sweep_s,
                )
            ),
            asyncio.create_task(
                run_consumer(
                    settings,
                    topics=[settings.zones_topic],
                    group_id=group,
                    handler=zones_handler(db),
                    producer=producer,
                    stop=stop,
                )
            ),
            asyncio.create_task(_purge_loop(db, settings=settings, stop=stop)),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                stop.set()
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks)
    finally:
        await producer.stop()
        await client.close()


def run(settings: ReportsSettings) -> None:
    """Runs the worker in its own event loop until SIGTERM or SIGINT."""

    async def main() -> None:
        await run_worker(settings, stop=stop_on_signals())

    asyncio.run(main())
