"""What one HTTP process of a service holds: its database client and readiness."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.kafka import kafka_unreachable
from shared.mongo import database, database_unreachable, new_client
from shared.settings import ServiceSettings

READINESS_CACHE_S = 1.0


@dataclass
class Runtime:
    """Opened in the app's lifespan, inside the event loop that uses it.

    HTTP apps never publish to Kafka themselves: they write an outbox into the
    changed document and the service's relay publishes it.
    """

    settings: ServiceSettings
    client: AsyncMongoClient | None = None
    _kafka_checked: tuple[float, str] = field(default=(0.0, ""))

    @property
    def db(self) -> AsyncDatabase:
        """The service's own database."""
        assert self.client is not None, "Runtime.start() was not awaited"
        return database(self.client, self.settings)

    async def start(self) -> None:
        """Open the database client."""
        self.client = new_client(self.settings)

    async def stop(self) -> None:
        """Close what start() opened."""
        if self.client is not None:
            await self.client.close()

    async def kafka_problem(self) -> str:
        """Why Kafka is unreachable (cached for a second), or an empty string."""
        checked_at, reason = self._kafka_checked
        if time.monotonic() - checked_at > READINESS_CACHE_S:
            reason = await kafka_unreachable(self.settings)
            self._kafka_checked = (time.monotonic(), reason)
        return reason

    async def database_problem(self) -> str:
        """Why the database is unreachable, or an empty string."""
        if self.client is None:
            return "database client not started"
        return await database_unreachable(self.client)
