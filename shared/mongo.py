"""The database client: PyMongo's asynchronous API, one client per event loop."""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, OperationFailure

from shared.settings import ServiceSettings


def new_client(settings: ServiceSettings) -> AsyncMongoClient:
    """A client with short timeouts, so that readiness answers quickly."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        tz_aware=True,
    )


NAMESPACE_EXISTS = 48


async def ensure_collections(db: AsyncDatabase, names: list[str]) -> None:
    """Create the collections that do not exist yet.

    Several processes of one service start together and race to create them; the
    loser's "already exists" is what it wanted.
    """
    existing = set(await db.list_collection_names())
    for name in names:
        if name in existing:
            continue
        try:
            await db.create_collection(name)
        except CollectionInvalid:
            pass  # the client saw it exists
        except OperationFailure as error:
            if error.code != NAMESPACE_EXISTS:
                raise


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
