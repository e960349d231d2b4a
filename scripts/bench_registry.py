"""Benchmark of the registry: Antwerp's 609 BINs and 87,491 members through the API.

Starts its own registry api and relay on free ports with a database of its own,
imports the reference data, founds 609 BINs across the province's 22 zones, and
registers 87,491 members: most from their coordinators' CSV files (paper consent,
one file per BIN), the rest registering themselves online, several requests at a
time. A consumer counts this run's records on `registry.memberships.v1` and
`registry.contacts.v1` until every member is on both.

Prints the figures and writes them to bench-results/registry.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import catalogue  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402
from tests.builders import registry as build  # noqa: E402

BINS = 609
MEMBERS = 87_491
PROVINCE = "10000"  # Antwerpen
FULLY_COVERED = ("ipz21", "ipz10", "ipz9")
ONLINE_SHARE = 0.05
CONCURRENCY = 8
MEMBER_TOPICS = ("registry.memberships.v1", "registry.contacts.v1")
RESULTS = ROOT / "bench-results" / "registry.json"
OPERATOR = build.bearer(build.token("operator", ttl_s=6 * 3600))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(role: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """Starts one registry role as a process, its output in a log file."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"registry-{role}.log").open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "services.registry", role], cwd=ROOT,
            env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT,
        )


async def wait_ready(url: str, timeout_s: float = 90) -> None:
    """Polls /readyz until the app answers 200."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"bench-registry: {url} never became ready")


def plan_bins(zones: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """609 BINs over the zones, in proportion to their sectors.

    The three zones the province reports as fully covered are; elsewhere BINs
    cover about two thirds of a zone.
    """
    total = sum(len(units) for units in zones.values())
    counts = {z: max(1, round(BINS * len(u) / total)) for z, u in zones.items()}
    biggest = max(counts, key=counts.__getitem__)
    counts[biggest] += BINS - sum(counts.values())
    plan = []
    for zone, units in zones.items():
        covered = units if zone in FULLY_COVERED else units[: max(
            counts[zone], len(units) * 2 // 3)]
        n = counts[zone]
        for i in range(n):
            part = covered[i * len(covered) // n:(i + 1) * len(covered) // n]
            plan.append((zone, part or covered[-1:]))
    return plan


def member_counts(rng: random.Random) -> list[int]:
    """How many members each BIN has: skewed, as real BINs are, summing to 87,491."""
    weights = [rng.lognormvariate(0, 0.8) for _ in range(BINS)]
    scale = MEMBERS / sum(weights)
    counts = [max(5, int(w * scale)) for w in weights]
    i = 0
    while (diff := MEMBERS - sum(counts)) != 0:
        step = 1 if diff > 0 else -1
        if counts[i % BINS] + step >= 5:
            counts[i % BINS] += step
        i += 1
    return counts


class EventCounter:
    """Counts this run's member records on Kafka as they arrive."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.bins: set[str] = set()
        self.members: dict[str, set[str]] = {t: set() for t in MEMBER_TOPICS}
        self.records: dict[str, int] = dict.fromkeys(MEMBER_TOPICS, 0)
        self.versions: dict[str, set[tuple[bytes, int]]] = {t: set()
                                                             for t in MEMBER_TOPICS}
        self.last_timestamp_ms = 0
        self.start: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None

    async def mark(self) -> None:
        """Starts reading at the topics' current ends."""
        self.consumer = AIOKafkaConsumer(**self.settings.kafka_client_options(),
                                         enable_auto_commit=False)
        await self.consumer.start()
        partitions = [TopicPartition(t, p) for t in MEMBER_TOPICS
                      for p in range(catalogue.topic(t).partitions)]
        self.consumer.assign(partitions)
        self.start = await self.consumer.end_offsets(partitions)
        for tp, offset in self.start.items():
            self.consumer.seek(tp, offset)

    async def run(self, stop: asyncio.Event) -> None:
        """Reads until stopped; memberships name their BIN, contacts follow them."""
        assert self.consumer is not None
        ours: set[bytes] = set()
        early: list[Any] = []
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == "registry.memberships.v1" and record.value:
                        snapshot = json.loads(record.value)
                        if snapshot["bin_id"] in self.bins:
                            ours.add(record.key)
                            self._count(tp.topic, record, snapshot["version"])
                    elif tp.topic == "registry.contacts.v1":
                        early.append(record)
            waiting = []
            for record in early:
                if record.key in ours:
                    version = json.loads(record.value)["version"] if record.value else 0
                    self._count("registry.contacts.v1", record, version)
                else:
                    waiting.append(record)
            # Contacts of other producers never match; keep a bounded backlog.
            early = waiting[-200_000:]

    def _count(self, topic: str, record: Any, version: int) -> None:
        self.records[topic] += 1
        self.members[topic].add(record.key.decode())
        self.versions[topic].add((record.key, version))
        self.last_timestamp_ms = max(self.last_timestamp_ms, record.timestamp)

    def complete(self) -> bool:
        """Every member is on both topics."""
        return all(len(self.members[t]) >= MEMBERS for t in MEMBER_TOPICS)

    async def close(self) -> None:
        """Stops the consumer."""
        if self.consumer is not None:
            await self.consumer.stop()


async def found_bins(
    client: httpx.AsyncClient, plan: list[tuple[str, list[str]]]
) -> list[str]:
    """Founds the BINs, as the zones' staff would, several at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(zone: str, territory: list[str]) -> str:
        async with gate:
            response = await client.post(
                "/v1/bins", headers=build.bearer(build.token("zone", zone)),
                json=build.bin_in(zone, territory, status="active"),
            )
            response.raise_for_status()
            return response.json()["bin_id"]

    return list(await asyncio.gather(*(one(z, t) for z, t in plan)))


async def register_members(
    client: httpx.AsyncClient, bins: list[str], counts: list[int], rng: random.Random
) -> dict[str, Any]:
    """Each BIN's coordinator imports a CSV; the rest of its members join online."""
    gate = asyncio.Semaphore(CONCURRENCY)
    outcome: dict[str, Any] = {"csv_files": 0, "csv_members": 0, "online_members": 0,
                               "errors": 0}

    async def import_file(bin_id: str, rows: list[dict[str, str]]) -> None:
        headers = {**build.bearer(build.token("coordinator", bin_id)),
                   "content-type": "text/csv"}
        async with gate:
            response = await client.post(f"/v1/bins/{bin_id}/members/import",
                                         headers=headers,
                                         content=build.member_csv(rows))
        if response.status_code != 200:
            outcome["errors"] += 1
            return
        outcome["csv_files"] += 1
        outcome["csv_members"] += response.json()["imported"]

    async def join(bin_id: str) -> None:
        body = build.member_in(channels=rng.choice((("sms",), ("email",),
                                                    ("sms", "email"))),
                               language=rng.choice(("nl", "nl", "nl", "fr", "en")))
        async with gate:
            response = await client.post(f"/v1/bins/{bin_id}/members", json=body)
        if response.status_code != 201:
            outcome["errors"] += 1
            return
        outcome["online_members"] += 1

    work: list[tuple[str, Any]] = []
    for bin_id, n in zip(bins, counts, strict=True):
        online = int(n * ONLINE_SHARE)
        rows = [build.csv_row(channels=rng.choice(("sms", "email", "sms;email")))
                for _ in range(n - online)]
        work.append((bin_id, rows))
        work += [(bin_id, None)] * online
    rng.shuffle(work)
    started = time.perf_counter()
    await asyncio.gather(*(join(b) if rows is None else import_file(b, rows)
                           for b, rows in work))
    outcome["seconds"] = time.perf_counter() - started
    return outcome


async def bench() -> dict[str, Any]:
    """Runs the benchmark and returns its figures."""
    settings = ServiceSettings()
    rng = random.Random(609)
    build.fake.seed_instance(87491)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = f"bench_registry_{uuid.uuid4().hex[:8]}"
    env = {"HTTP_PORT": str(port), "MONGODB_DATABASE": database,
           "LOG_LEVEL": "WARNING"}
    logs = ROOT / ".run" / "logs" / "bench" / database
    processes = [start("api", env, logs), start("relay", env, logs)]
    counter = EventCounter(settings)
    stop = asyncio.Event()
    try:
        await wait_ready(url)
        limits = httpx.Limits(max_connections=CONCURRENCY * 2)
        async with httpx.AsyncClient(
            base_url=url, timeout=300, limits=limits
        ) as client:
            started = time.perf_counter()
            imported = await client.post("/v1/reference/import", headers=OPERATOR)
            imported.raise_for_status()
            reference_s = time.perf_counter() - started
            zones = {}
            for zone in (await client.get("/v1/zones",
                                          params={"province": PROVINCE})).json():
                answer = await client.get(f"/v1/zones/{zone['zone']}/sectors")
                zones[zone["zone"]] = answer.json()["sectors"]
            plan = plan_bins(zones)

            await counter.mark()
            reader = asyncio.create_task(counter.run(stop))
            started = time.perf_counter()
            bins = await found_bins(client, plan)
            bins_s = time.perf_counter() - started
            counter.bins.update(bins)
            counts = member_counts(rng)
            print(f"bench-registry: {len(bins)} BINs in {bins_s:.1f} s; "
                  f"registering {sum(counts)} members ...", flush=True)
            outcome = await register_members(client, bins, counts, rng)
            members_s = outcome["seconds"]
            last_write_ms = time.time() * 1000
            print(f"bench-registry: members written in {members_s:.1f} s; "
                  "waiting for their events on Kafka ...", flush=True)
            deadline = time.monotonic() + 1800
            while not counter.complete() and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            kafka_wait_s = (time.time() * 1000 - last_write_ms) / 1000
            stop.set()
            await reader
    finally:
        await counter.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    members = outcome["csv_members"] + outcome["online_members"]
    return {
        "bins": len(bins),
        "members": members,
        "members_csv": outcome["csv_members"],
        "members_online": outcome["online_members"],
        "csv_files": outcome["csv_files"],
        "request_errors": outcome["errors"],
        "reference_import_s": round(reference_s, 1),
        "bins_s": round(bins_s, 1),
        "members_s": round(members_s, 1),
        "members_per_s": round(members / members_s, 1),
        "events_complete": counter.complete(),
        "kafka_after_last_write_s": round(kafka_wait_s, 1),
        "last_event_after_last_write_s": round(
            (counter.last_timestamp_ms - last_write_ms) / 1000, 1),
        "until_all_on_kafka_s": round(members_s + kafka_wait_s, 1),
        "records": counter.records,
        "members_on_topic": {t: len(m) for t, m in counter.members.items()},
        "repeated_records": {t: counter.records[t] - len(counter.versions[t])
                             for t in MEMBER_TOPICS},
        "concurrency": CONCURRENCY,
        "database": database,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    """Runs the benchmark, prints the figures and writes them to bench-results/."""
    figures = asyncio.run(bench())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"bench-registry: {figures['members']} members at "
          f"{figures['members_per_s']} members/s; every event on Kafka "
          f"{figures['until_all_on_kafka_s']} s after the first member write "
          f"({figures['kafka_after_last_write_s']} s after the last)")
    if not figures["events_complete"] or figures["members"] != MEMBERS:
        raise SystemExit("bench-registry: not every member reached Kafka")


if __name__ == "__main__":
    main()
