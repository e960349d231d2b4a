"""Runs one role of the registry: `python -m services.registry <role>`.

Roles: api, relay, directory (the projection behind `GET /v1/directory`) and
import-reference.
"""

from __future__ import annotations

import asyncio
import logging

from services.registry.settings import get_settings
from shared.http import serve
from shared.service import main

log = logging.getLogger("bin.registry")


def api() -> None:
    """Serves the HTTP API."""
    from services.registry.app import app

    settings = get_settings()
    serve(app, host=settings.http_host, port=settings.http_port)


def relay() -> None:
    """Publishes the outbox of every changed document to Kafka."""
    from services.registry.streams import run_outbox_relay

    asyncio.run(run_outbox_relay(get_settings()))


def directory() -> None:
    """Keeps the directory of BIN actors current from the registry's own topics."""
    from services.registry.streams import run_directory

    asyncio.run(run_directory(get_settings()))


def import_reference() -> None:
    """Imports zones, municipalities and sectors from the reference directory."""
    from services.registry.service import Registry
    from shared.mongo import database, new_client

    async def run() -> dict[str, int]:
        settings = get_settings()
        client = new_client(settings)
        try:
            registry = Registry(db=database(client, settings), settings=settings)
            return await registry.import_reference(directory=settings.reference_dir)
        finally:
            await client.close()

    outcome = asyncio.run(run())
    log.info("reference data imported", extra={"count": outcome["zones"]})


if __name__ == "__main__":
    main(
        service="registry",
        settings=get_settings(),
        roles={"api": api, "relay": relay, "directory": directory,
               "import-reference": import_reference},
    )
