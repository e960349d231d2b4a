"""Helpers of the registry's integration tests (this module holds no tests).

The registry runs as real processes (its HTTP app and its outbox relay) with a
database of its own; the topics are shared with every other test and with the stack
other engineers run, so records are read from the offsets the topics had when a
test module started and picked out by key.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient

from shared import catalogue
from shared.settings import ServiceSettings
from tests.conftest import ROOT, ServiceProcess, free_port, unique, wait_http

MODULE = "services.registry"
TOPICS = ("registry.zones.v1", "registry.bins.v1", "registry.memberships.v1",
          "registry.contacts.v1", "registry.directory-listings.v1")
PROBLEM = "application/problem+json"


@dataclass
class Registry:
    """The registry's api, relay and directory processes, its database and how to
    reach it."""

    database: str = field(default_factory=lambda: unique("reg").replace("-", "_"))
    port: int = field(default_factory=free_port)
    api: ServiceProcess | None = None
    relay: ServiceProcess | None = None
    directory: ServiceProcess | None = None

    @property
    def url(self) -> str:
        """The HTTP app's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The settings of every process."""
        return {"HTTP_PORT": str(self.port), "MONGODB_DATABASE": self.database,
                "RELAY_SWEEP_SECONDS": "2",
                "DIRECTORY_GROUP_ID": f"registry-directory-{self.database}"}

    def start_api(self) -> None:
        """Starts the HTTP app and waits until it is ready."""
        self.api = self._process("api").start()
        wait_http(f"{self.url}/readyz", timeout_s=60)

    def start_relay(self) -> None:
        """Starts the outbox relay."""
        self.relay = self._process("relay").start()

    def start_directory(self) -> None:
        """Starts the directory projection."""
        self.directory = self._process("directory").start()

    def stop(self) -> None:
        """Stops every process started."""
        for process in (self.api, self.relay, self.directory):
            if process is not None:
                process.stop()

    def logs(self) -> str:
        """What the processes have logged."""
        return "".join(p.logs() for p in (self.api, self.relay, self.directory)
                       if p is not None)

    def _process(self, role: str) -> ServiceProcess:
        log = ROOT / ".run" / "logs" / "tests" / f"{unique('registry-' + role)}.log"
        return ServiceProcess(module=MODULE, role=role, env=self.env, log=log)


class TopicLog:
    """The registry topics' records written since `mark()`."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.start: dict[TopicPartition, int] = {}

    async def mark(self) -> None:
        """Remembers where every registry topic ends now."""
        consumer = self._consumer()
        await consumer.start()
        try:
            partitions = [
                TopicPartition(name, p)
                for name in TOPICS
                for p in range(catalogue.topic(name).partitions)
            ]
            self.start = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()

    async def read(self, topic: str) -> list[ConsumerRecord]:
        """Every record of one topic written since the mark, in partition order."""
        partitions = [tp for tp in self.start if tp.topic == topic]
        consumer = self._consumer()
        await consumer.start()
        try:
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            found: list[ConsumerRecord] = []
            for tp in partitions:
                consumer.seek(tp, self.start[tp])
            pending = {tp for tp in partitions if ends[tp] > self.start[tp]}
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=1000)
                for tp, records in batches.items():
                    found += [r for r in records if r.offset < ends[tp]]
                for tp in list(pending):
                    # The position, not the last offset: compaction leaves gaps.
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return found
        finally:
            await consumer.stop()

    async def of_keys(self, topic: str, keys: Iterable[str]) -> list[ConsumerRecord]:
        """The records of some keys."""
        wanted = {k.encode() for k in keys}
        return [r for r in await self.read(topic) if r.key in wanted]

    async def wait(
        self,
        topic: str,
        keys: Iterable[str],
        check: Callable[[list[ConsumerRecord]], bool],
        *,
        timeout_s: float = 60,
    ) -> list[ConsumerRecord]:
        """Polls until the records of some keys satisfy `check`."""
        keys = list(keys)
        deadline = time.monotonic() + timeout_s
        found: list[ConsumerRecord] = []
        while time.monotonic() < deadline:
            found = await self.of_keys(topic, keys)
            if check(found):
                return found
            await asyncio.sleep(0.5)
        summary = [(r.key, body(r) and body(r).get("version")) for r in found]
        raise AssertionError(f"{topic}: the check never held; records: {summary[:20]}")

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(**self.settings.kafka_client_options(),
                                enable_auto_commit=False)


def header(record: ConsumerRecord, name: str) -> str:
    """One header of a record, as text."""
    return dict(record.headers)[name].decode()


def body(record: ConsumerRecord) -> dict[str, Any] | None:
    """A record's JSON body; None for a tombstone."""
    return None if record.value is None else json.loads(record.value)


def count(n: int) -> Callable[[list[ConsumerRecord]], bool]:
    """A check that at least n distinct events are there."""
    return lambda records: len(distinct(records)) >= n


def distinct(records: list[ConsumerRecord]) -> list[ConsumerRecord]:
    """The records as an idempotent consumer counts them: a repeat of an event id
    (the relay publishes an entry again when it could not clear it) is dropped."""
    seen: set[str] = set()
    kept = []
    for record in records:
        event_id = header(record, "ce_id")
        if event_id not in seen:
            seen.add(event_id)
            kept.append(record)
    return kept


def raw_bytes(record: ConsumerRecord) -> bytes:
    """Everything a record carries: key, value and headers."""
    parts = [record.key or b"", record.value or b""]
    for name, value in record.headers:
        parts += [name.encode(), value]
    return b"\x00".join(parts)


async def raw_documents(settings: ServiceSettings, database: str) -> dict[str, bytes]:
    """The raw BSON of every document of a database, by collection."""
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongodb_uri, document_class=RawBSONDocument
    )
    try:
        db = client[database]
        found = {}
        for name in await db.list_collection_names():
            # All in one reply: FerretDB 1.24 deadlocks on cursors left between
            # replies while someone writes.
            documents = await db[name].find({}, batch_size=100_000).to_list(None)
            found[name] = b"".join(d.raw for d in documents)
        return found
    finally:
        await client.close()


def assert_problem(response: httpx.Response, status: int, *fields: str) -> dict:
    """The answer is problem+json with that status, naming those fields."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem = response.json()
    assert problem["status"] == status
    named = {error["field"] for error in problem.get("errors", [])}
    for name in fields:
        assert any(name in n.split(".") for n in named), (name, problem)
    return problem
