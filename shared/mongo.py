"""The database client: PyMongo's asynchronous API, one client per event loop."""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import ServiceSettings


def new_client(settings: ServiceSettings) -> AsyncMongoClient:
    """A client with short timeouts, so that readiness answers quickly."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        tz_aware=True,
    )


def database(client: AsyncMongoClient, settings: ServiceSettings) -> AsyncDatabase:
    """The service's own database."""
    return client[settings.database_name()]


async def database_unreachable(client: AsyncMongoClient) -> str:
    """Why the database cannot be reached, or an empty string when it can."""
    try:
        await client.admin.command("ping")
        return ""
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        return f"database unreachable: {type(error).__name__}"
