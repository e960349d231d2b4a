"""Integration tests run against the real Kafka broker and the real FerretDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.kafka import ensure_topics, kafka_unreachable
from shared.mongo import database_unreachable, new_client
from shared.settings import ServiceSettings
from tests.integration.test_registry_support import Registry, TopicLog


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


@pytest.fixture(scope="module")
def registry(platform: ServiceSettings) -> Iterator[Registry]:
    """The module's registry processes."""
    running = Registry()
    running.start_api()
    running.start_relay()
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def topics(platform: ServiceSettings, registry: Registry) -> TopicLog:
    """The registry topics from before the module's first write."""
    log = TopicLog(platform)
    await log.mark()
    return log
