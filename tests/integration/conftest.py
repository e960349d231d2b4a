"""Integration tests run against the real Kafka broker and the real FerretDB."""

from __future__ import annotations

import pytest

from shared.kafka import ensure_topics, kafka_unreachable
from shared.mongo import database_unreachable, new_client
from shared.settings import ServiceSettings


@pytest.fixture(scope="session", autouse=True)
async def platform(base_settings: ServiceSettings) -> ServiceSettings:
    """Checks that Kafka and the database answer and creates the catalogue's topics."""
    reason = await kafka_unreachable(base_settings, timeout_s=10)
    assert not reason, f"{reason}: run the tests with `make test`, which starts Kafka"
    client = new_client(base_settings)
    reason = await database_unreachable(client)
    await client.close()
    assert not reason, f"{reason}: run the tests with `make test`, which starts FerretDB"
    await ensure_topics(base_settings)
    return base_settings
