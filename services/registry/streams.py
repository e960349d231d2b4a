"""The registry's Kafka side: the outbox relay, its only producer."""

from __future__ import annotations

import asyncio
import logging
import signal

from services.registry import store
from services.registry.settings import RegistrySettings
from shared.kafka import new_producer
from shared.mongo import database, new_client
from shared.outbox import run_relay

log = logging.getLogger("bin.registry.relay")


async def run_outbox_relay(settings: RegistrySettings) -> None:
    """Publish every stored event of the registry until the process is told to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = new_client(settings)
    db = database(client, settings)
    producer = new_producer(settings)
    while not stop.is_set():
        try:
            await producer.start()
            break
        except Exception as error:  # noqa: BLE001 - the broker may still be starting
            log.warning("RETRY relay cannot reach Kafka", extra={"reason": type(error).__name__})
            await asyncio.sleep(2)
    log.info("outbox relay started")
    try:
        await run_relay(
            producer, db, collections=lambda: store.outbox_collections(db),
            source="registry", stop=stop, sweep_s=settings.relay_sweep_seconds,
        )
    finally:
        await producer.stop()
        await client.close()
