"""Benchmark of the coverage worker: membership events in, coverage records out.

Starts its own worker (a unique Faust app id, coverage topics of its own made
like `analytics.coverage.v1`, and by default the registry's history skipped),
registers a test province with zones and BINs, then feeds member joins at steady
rates and measures, for every join, the time from producing it to the first
coverage record of its zone that counts it. Each step also gives the worker's CPU
time per event, which does not depend on what else the machine runs. Writes the
figures to bench-results/coverage.json.

Usage: .venv/bin/python scripts/bench_coverage.py [--rates 1000,2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import catalogue, events  # noqa: E402
from shared.envelope import decode, encode  # noqa: E402
from shared.kafka import ensure_topics, new_producer  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402
from tests.builders import analytics as build  # noqa: E402

GOAL_P99_MS = 500.0
ZONES = 20
BINS_PER_ZONE = 10
DRAIN_S = 5.0
WARM_UP_MAX_S = 120.0


def start_worker(
    app_id: str, port: int, log: Path, topics: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Starts the coverage worker as `make up` would, publishing to `topics`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "FAUST_APP_ID": app_id,
        "WORKER_METRICS_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **topics,
    }
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "services.analytics", "worker"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def wait_ready(url: str, timeout_s: float = 90) -> None:
    """Polls the worker's readiness page."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"worker not ready at {url}")


class Tracker:
    """Joins sent per zone, matched against the member counts that come out."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.pending: dict[str, deque[tuple[int, float]]] = {}
        self.latencies: list[float] = []
        self.bins: dict[str, int] = {}

    def joined(self, zone: str) -> None:
        """Records one more join in a zone, produced now."""
        count = self.sent.get(zone, 0) + 1
        self.sent[zone] = count
        self.pending.setdefault(zone, deque()).append((count, time.perf_counter()))

    def seen(self, zone: str, members: int) -> None:
        """Matches a coverage record against the joins it counts."""
        now = time.perf_counter()
        queue = self.pending.get(zone)
        while queue and queue[0][0] <= members:
            self.latencies.append(now - queue[0][1])
            queue.popleft()

    def outstanding(self) -> int:
        """Joins not yet seen in a coverage record."""
        return sum(len(queue) for queue in self.pending.values())


async def follow(
    settings: ServiceSettings,
    tracker: Tracker,
    zones: set[str],
    stop: asyncio.Event,
    *,
    topic: str,
) -> None:
    """Reads coverage records of the benchmark's zones as they come."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.kafka_client_options(),
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50, max_records=5000)
            for records in batches.values():
                for record in records:
                    if record.key is None or record.key.decode() not in zones:
                        continue
                    received = decode(
                        key=record.key, value=record.value, headers=record.headers
                    )
                    if isinstance(received.event, events.ZoneCoverage):
                        tracker.bins[received.event.zone] = received.event.active_bins
                        tracker.seen(received.event.zone, received.event.active_members)
    finally:
        await consumer.stop()


async def run(
    rates: list[int], seconds: float, *, history: bool = False
) -> dict[str, object]:
    """Runs the benchmark steps and returns the figures."""
    settings = ServiceSettings()
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    await ensure_topics(settings)
    run_id = uuid.uuid4().hex[:8]
    app_id = f"bench-coverage-{run_id}"
    port = 6700 + int(run_id[:2], 16)
    # Every coverage worker on the broker publishes to analytics.coverage.v1, the
    # stack's own too: topics of the run's own, made like the catalogue's, keep
    # the figures to those of the worker measured.
    topics = {
        "COVERAGE_TOPIC": f"{app_id}-coverage",
        "AREA_TOPIC": f"{app_id}-coverage-province",
    }
    await ensure_topics(settings, topics=own_topics(topics))
    log = ROOT / ".run" / "logs" / f"bench-{app_id}.log"
    if not history:
        await build.skip_registry_history(settings, group=app_id)
    worker = start_worker(app_id, port, log, topics)
    producer = new_producer(settings, linger_ms=2)
    await producer.start()
    tracker = Tracker()
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        province = f"bench-{run_id}"
        zones = [f"bench-{run_id}-z{i}" for i in range(ZONES)]
        bins = {z: [f"{z}-b{j}" for j in range(BINS_PER_ZONE)] for z in zones}
        stop = asyncio.Event()
        follower = asyncio.create_task(
            follow(settings, tracker, set(zones), stop, topic=topics["COVERAGE_TOPIC"])
        )
        await asyncio.sleep(2)
        for zone in zones:
            await send(producer, build.zone(zone, province_nis=province), zone)
            for bin_id in bins[zone]:
                await send(
                    producer,
                    build.bin_(bin_id, zone=zone, territory=[f"{zone}-u0"]),
                    bin_id,
                )
        # Two sentinel members per zone land on every membership partition (almost
        # surely): once all are counted the worker has caught up with whatever
        # history it was given to read.
        setup_started = time.perf_counter()
        for zone in zones:
            for sentinel in range(2):
                member_id = f"{zone}-sentinel{sentinel}"
                tracker.joined(zone)
                await send(
                    producer,
                    build.member(member_id, bin_id=bins[zone][0], zone=zone),
                    member_id,
                )
        await producer.flush()
        while tracker.outstanding() or any(
            tracker.bins.get(zone) != BINS_PER_ZONE for zone in zones
        ):
            await asyncio.sleep(0.2)
        catch_up_s = round(time.perf_counter() - setup_started, 1)
        print(json.dumps({"worker_caught_up_after_s": catch_up_s}))
        member = await warm_up(producer, tracker, zones, bins, run_id)
        steps = []
        for rate in rates:
            tracker.latencies = []
            cpu_before, load_before = cpu_seconds(worker.pid), os.getloadavg()[0]
            started = time.perf_counter()
            tick = 0.01
            per_tick = rate * tick
            sent = 0
            while (elapsed := time.perf_counter() - started) < seconds:
                due = int(elapsed / tick * per_tick) + int(per_tick)
                while sent < due:
                    zone = zones[member % ZONES]
                    bin_id = bins[zone][member % BINS_PER_ZONE]
                    member_id = f"bench-{run_id}-m{member}"
                    tracker.joined(zone)
                    await send(
                        producer,
                        build.member(member_id, bin_id=bin_id, zone=zone),
                        member_id,
                        wait=False,
                    )
                    member += 1
                    sent += 1
                await asyncio.sleep(tick)
            deadline = time.perf_counter() + DRAIN_S
            while tracker.outstanding() and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            step = summarise(rate, sent, seconds, tracker)
            # CPU time per event does not depend on what else the machine runs,
            # unlike the latencies: it says what one core could keep up with.
            cpu_ms = (cpu_seconds(worker.pid) - cpu_before) * 1000 / max(sent, 1)
            step["worker_cpu_ms_per_event"] = round(cpu_ms, 3)
            step["load_average_1m"] = [
                round(load_before, 2),
                round(os.getloadavg()[0], 2),
            ]
            steps.append(step)
            print(json.dumps(steps[-1]))
            if not steps[-1]["kept_up"]:
                break
            await asyncio.sleep(2)
        stop.set()
        await follower
    finally:
        await producer.stop()
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
        await delete_topics(settings, list(topics.values()))
    kept = [s["rate_per_s"] for s in steps if s["kept_up"]]
    return {
        "benchmark": "coverage",
        "what": "membership produced -> its zone's coverage record on a compacted "
        "topic made like analytics.coverage.v1",
        "load_average_at_start": load_at_start,
        "zones": ZONES,
        "bins": ZONES * BINS_PER_ZONE,
        "seconds_per_step": seconds,
        "goal": {"rate_per_s": 1000, "p99_ms_below": GOAL_P99_MS},
        "registry_history_read": history,
        "catch_up_s": catch_up_s,
        "steps": steps,
        "highest_rate_kept_up_per_s": max(kept) if kept else 0,
        "goal_met": any(s["rate_per_s"] >= 1000 and s["meets_goal"] for s in steps),
    }


def own_topics(topics: dict[str, str]) -> list[catalogue.Topic]:
    """The run's coverage topics, partitioned and cleaned up like the catalogue's."""
    made_like = {
        "COVERAGE_TOPIC": catalogue.topic(events.ZoneCoverage.TOPIC),
        "AREA_TOPIC": catalogue.topic(events.AreaCoverage.TOPIC),
    }
    return [
        dataclasses.replace(made_like[setting], name=name)
        for setting, name in topics.items()
    ]


async def delete_topics(settings: ServiceSettings, names: list[str]) -> None:
    """Removes the run's own output topics."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def warm_up(
    producer,
    tracker: Tracker,
    zones: list[str],
    bins: dict[str, list[str]],
    run_id: str,
) -> int:
    """Sends single joins until five in a row come out fast; returns joins sent.

    Whatever backlog the worker still had from the registry's history would
    otherwise count against the first step.
    """
    fast, member = 0, 0
    deadline = time.perf_counter() + WARM_UP_MAX_S
    while fast < 5 and time.perf_counter() < deadline:
        zone = zones[member % ZONES]
        member_id = f"bench-{run_id}-warm{member}"
        tracker.latencies = []
        tracker.joined(zone)
        await send(
            producer,
            build.member(member_id, bin_id=bins[zone][0], zone=zone),
            member_id,
        )
        member += 1
        while tracker.outstanding() and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        fast = fast + 1 if tracker.latencies and tracker.latencies[0] < 0.25 else 0
    print(json.dumps({"warm_up_joins": member}))
    return member


async def send(producer, event: events.Event, key: str, *, wait: bool = True) -> None:
    """Publishes one registry snapshot, waiting for the broker only when asked."""
    body, headers = encode(event, source="bench", subject=key)
    future = await producer.send(
        event.TOPIC, value=body, key=key.encode(), headers=headers
    )
    if wait:
        await future


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(
    rate: int, sent: int, seconds: float, tracker: Tracker
) -> dict[str, object]:
    """The figures of one step."""
    values = sorted(tracker.latencies)
    matched = len(values)
    if len(values) >= 2:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    else:
        p50 = p99 = float("nan")
    # Keeping up: every join counted before the drain ends, no backlog beyond a second.
    kept_up = matched == sent and p99 < 1000.0
    return {
        "rate_per_s": rate,
        "achieved_rate_per_s": round(sent / seconds),
        "sent": sent,
        "seen": matched,
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(values[-1] * 1000, 1) if values else None,
        "kept_up": kept_up,
        "meets_goal": kept_up and p99 < GOAL_P99_MS,
    }


def main() -> None:
    """Parses the arguments, runs the benchmark, writes bench-results/coverage.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,3000,4000,6000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--history",
        action="store_true",
        help="let the worker read the registry's whole history first",
    )
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    result = asyncio.run(run(rates, args.seconds, history=args.history))
    out = ROOT / "bench-results" / "coverage.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: result[k] for k in ("highest_rate_kept_up_per_s", "goal_met")})
    )


if __name__ == "__main__":
    main()
