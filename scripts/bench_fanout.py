"""Benchmark of the fan-out: one alert to the 87,491 members of the province of Antwerp.

Starts its own messaging processes (gateway, API, relay, fan-out worker, one sender
per channel) on free ports, with a database, a Faust app id and topics of their
own (MESSAGING_TOPIC_PREFIX, REGISTRY_TOPIC_PREFIX), so that the running stack
sees nothing of it and it replays nobody else's registry history. It registers one
benchmark zone holding the province's 609 BINs and 87,491 members by producing
registry snapshots straight onto its registry topics (channels and languages drawn
with the Antwerp scenario's shares), waits until the fan-out knows every member,
measures the raw aiokafka producer on records of a delivery's size, then publishes
one alert to the whole zone through the API with the providers unthrottled.

It reports the time from acceptance until the last delivery is on its channel
topic (from the records' timestamps), until the last hand-over to a provider (the
gateway's receipt times), the p50/p95 hand-over latency, deliveries per second,
and the raw producer throughput; prints them and writes bench-results/fanout.json.
At the end it deletes its own topics (keep them with --keep).

Usage: .venv/bin/python scripts/bench_fanout.py [--members 87491] [--bins 609]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scenario.antwerp import (
    ACTIVE_BINS,
    CHANNEL_CHANCES,
    LANGUAGE_SHARES,
    MEMBERS,
)
from services.messaging.settings import MessagingSettings
from shared import crypto
from shared.auth import issue_token
from shared.catalogue import CHANNELS
from shared.envelope import encode
from shared.events import (
    AlertText,
    BinSnapshot,
    ContactsSnapshot,
    Delivery,
    MembershipSnapshot,
    Municipality,
    ZoneSnapshot,
)
from shared.kafka import ensure_topics, new_producer
from shared.settings import ServiceSettings

GOAL_P95_S = 5.0
GOAL_ALL_S = 10.0
SOURCE = "bench.registry"
NIS = "11002"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(
    role: str, env: dict[str, str], logs: Path, *, profile: bool = False
) -> subprocess.Popen[bytes]:
    """Starts one messaging role as `make up` would, its output in a log file."""
    logs.mkdir(parents=True, exist_ok=True)
    name = role.replace(" --channel ", "-")
    profiler = ["-m", "cProfile", "-o", str(logs / f"{name}.prof")] if profile else []
    with (logs / f"{name}.log").open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, *profiler, "-m", "services.messaging", *role.split()],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def wait_http(url: str, *, timeout_s: float = 120) -> httpx.Response:
    """Polls a URL until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=3)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout_s}s")


def population(
    *, zone: str, bins: int, members: int, seed: int
) -> tuple[list[BinSnapshot], list[MembershipSnapshot]]:
    """The benchmark zone's BINs and members, channels drawn as in the scenario."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bin_ids = [f"{zone}-bin-{n:04d}" for n in range(bins)]
    snapshots = [
        BinSnapshot(
            bin_id=bin_id,
            zone=zone,
            name=f"Bench BIN {n}",
            kind="residential",
            status="active",
            territory=[f"{NIS}A{n:03d}-"],
            version=1,
            updated_at=now,
        )
        for n, bin_id in enumerate(bin_ids)
    ]
    languages, weights = list(LANGUAGE_SHARES), list(LANGUAGE_SHARES.values())
    people = []
    for n in range(members):
        channels = [c for c, p in CHANNEL_CHANCES.items() if rng.random() < p]
        people.append(
            MembershipSnapshot(
                member_id=f"{zone}-m-{n:06d}",
                bin_id=bin_ids[n % bins],
                zone=zone,
                role="member",
                status="active",
                language=rng.choices(languages, weights)[0],  # type: ignore[arg-type]
                channels=channels or ["email"],  # type: ignore[arg-type]
                version=1,
                updated_at=now,
            )
        )
    return snapshots, people


def addresses(member_id: str) -> dict[str, str]:
    """Made-up addresses of a benchmark member on every channel."""
    digits = member_id.rsplit("-", 1)[1].zfill(7)
    return {
        "sms": f"+32470{digits}",
        "voice": f"+3232{digits}",
        "email": f"{member_id}@bench.example",
        "app": f"push-{member_id}",
    }


async def produce_all(
    producer: Any, records: list[tuple[str, str, bytes | None, Any]]
) -> None:
    """Send (topic, key, body, headers) records, waiting for all at the end."""
    futures = []
    for topic, key, body, headers in records:
        futures.append(
            await producer.send(topic, value=body, key=key.encode(), headers=headers)
        )
    await asyncio.gather(*futures)


def registry_records(
    *,
    zone: ZoneSnapshot,
    bins: list[BinSnapshot],
    members: list[MembershipSnapshot],
    ring: crypto.KeyRing,
    prefix: str,
) -> list[tuple[str, str, bytes | None, Any]]:
    """The registry's snapshots of the benchmark zone as Kafka records."""
    records = [
        (
            prefix + zone.TOPIC,
            zone.zone,
            *encode(zone, source=SOURCE, subject=zone.zone),
        )
    ]
    for snapshot in bins:
        records.append(
            (
                prefix + snapshot.TOPIC,
                snapshot.bin_id,
                *encode(snapshot, source=SOURCE, subject=snapshot.bin_id),
            )
        )
    for member in members:
        sealed = crypto.seal_json(
            ring, addresses(member.member_id), owner=member.member_id
        )
        contacts = ContactsSnapshot(
            member_id=member.member_id, contacts=sealed, version=1
        )
        for event in (member, contacts):
            records.append(
                (
                    prefix + event.TOPIC,
                    member.member_id,
                    *encode(event, source=SOURCE, subject=member.member_id),
                )
            )
    return records


async def delete_topics(settings: ServiceSettings, *, prefixes: list[str]) -> None:
    """Delete the benchmark's own topics: everything under its prefixes."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        names = [
            name
            for name in await admin.list_topics()
            if any(name.startswith(prefix) for prefix in prefixes)
        ]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def sample_delivery(ring: crypto.KeyRing) -> tuple[bytes, bytes, Any]:
    """A delivery record as the fan-out writes it: key, body and headers."""
    member_id = "bench-m-000001"
    delivery = Delivery(
        idempotency_key="dk1-email-" + "0" * 64,
        alert_id="bench-alert-" + "0" * 20,
        member_id=member_id,
        bin_id="bench-bin-0001",
        zone="bench",
        channel="email",
        fallbacks=["app"],
        language="nl",
        category="burglary",
        urgency="Immediate",
        text=AlertText(
            headline="Inbraken in de wijk: wees waakzaam",
            body="Sluit ramen en deuren en meld verdachte voertuigen.",
        ),
        address=crypto.seal_json(ring, addresses(member_id), owner=member_id),
        expires_at=datetime.now(UTC),
        accepted_at=datetime.now(UTC),
    )
    body, headers = encode(delivery, source="bench", subject=member_id)
    return member_id.encode(), body, headers


async def raw_producer_throughput(
    settings: ServiceSettings, *, count: int, ring: crypto.KeyRing
) -> dict[str, float]:
    """Records per second of the idempotent aiokafka producer on a topic of its own."""
    topic = f"bench.raw-producer.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=4, replication_factor=1)]
        )
    finally:
        await admin.close()
    key, body, headers = sample_delivery(ring)
    producer = new_producer(settings, linger_ms=10, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for n in range(count):
            futures.append(
                await producer.send(
                    topic, value=body, key=b"%s-%d" % (key, n), headers=headers
                )
            )
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    return {
        "records": count,
        "record_bytes": len(body) + len(key) + sum(len(k) + len(v) for k, v in headers),
        "seconds": round(seconds, 3),
        "records_per_s": round(count / seconds),
    }


async def end_offsets(settings: ServiceSettings, topics: list[str]) -> dict[Any, int]:
    """The end offset of every partition of the topics."""
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, n) for t in topics for n in range(4)]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def last_record_times(
    settings: ServiceSettings, *, start: dict[Any, int], end: dict[Any, int]
) -> float | None:
    """The newest record timestamp (ms since epoch) written between start and end."""
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None)
    await consumer.start()
    newest = None
    try:
        wanted = [tp for tp in end if end[tp] > start.get(tp, 0)]
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, end[tp] - 1)
        pending = set(wanted)
        while pending:
            batches = await consumer.getmany(timeout_ms=2000)
            if not batches:
                break
            for tp, records in batches.items():
                for record in records:
                    newest = max(newest or 0, record.timestamp)
                pending.discard(tp)
    finally:
        await consumer.stop()
    return newest


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expected_deliveries(members: list[MembershipSnapshot]) -> dict[str, int]:
    """How many deliveries each channel gets when the alert uses every channel."""
    counts = dict.fromkeys(CHANNELS, 0)
    for member in members:
        for channel in dict.fromkeys(member.channels):
            counts[channel] += 1
    return counts


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the sorted values lie (nearest rank)."""
    index = max(0, min(len(values) - 1, round(share * len(values) + 0.5) - 1))
    return values[index]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Sets everything up, publishes the alert and measures it."""
    settings = ServiceSettings()
    ring = crypto.keyring_from_settings(
        settings.contacts_keys, settings.contacts_active_key_id
    )
    run_id = uuid.uuid4().hex[:8]
    zone_code = f"bench{run_id}"
    prefix = f"bench-{run_id}."
    run_dir = ROOT / ".run" / "bench" / f"fanout-{run_id}"
    gateway_port, smtp_port, http_port, faust_port = (free_port() for _ in range(4))
    env = {
        "MESSAGING_TOPIC_PREFIX": prefix,
        "REGISTRY_TOPIC_PREFIX": prefix,
        "MONGODB_DATABASE": f"bench_fanout_{run_id}",
        "FAUST_APP_ID": f"bench-fanout-{run_id}",
        "FAUST_WEB_PORT": str(faust_port),
        "FAUST_DATADIR": str(run_dir / "faust"),
        "SENDER_GROUP_PREFIX": f"bench-sender-{run_id}",
        "STATUS_GROUP": f"bench-status-{run_id}",
        "HTTP_PORT": str(http_port),
        "GATEWAY_HTTP_PORT": str(gateway_port),
        "GATEWAY_SMTP_PORT": str(smtp_port),
        "GATEWAY_STORE_DIR": str(run_dir / "gateway"),
        "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "SMTP_PORT": str(smtp_port),
        "SMS_RATE_PER_S": "0",
        "VOICE_RATE_PER_S": "0",
        "EMAIL_RATE_PER_S": "0",
        "APP_RATE_PER_S": "0",
        "LOG_LEVEL": "WARNING",
    }
    zone = ZoneSnapshot(
        zone=zone_code,
        name="Benchmark zone",
        province_nis="bench",
        province_name="Benchmark",
        units=[f"{NIS}A{n:03d}-" for n in range(args.bins)],
        municipalities=[Municipality(nis=NIS, name_nl="Benchmark")],
        version=1,
    )
    bins, members = population(
        zone=zone_code, bins=args.bins, members=args.members, seed=args.seed
    )
    per_channel = expected_deliveries(members)
    total = sum(per_channel.values())
    print(
        f"benchmark zone {zone_code}: {len(bins)} BINs, {len(members)} members, "
        f"{total} deliveries {per_channel}",
        flush=True,
    )

    roles = [
        "gateway",
        "api",
        "relay",
        "fanout",
        *(f"sender --channel {c}" for c in CHANNELS),
    ]
    if args.with_status:
        roles.append("status")
    own = MessagingSettings(messaging_topic_prefix=prefix, registry_topic_prefix=prefix)
    await ensure_topics(settings, topics=own.prefixed_topics())
    processes = [
        start(role, env, run_dir / "logs", profile=args.profile) for role in roles
    ]
    print(f"logs in {(run_dir / 'logs').relative_to(ROOT)}", flush=True)
    producer = new_producer(settings, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    results: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        await produce_all(
            producer,
            registry_records(
                zone=zone, bins=bins, members=members, ring=ring, prefix=prefix
            ),
        )
        print(
            f"registry snapshots produced in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        wait_http(f"{env['GATEWAY_URL']}/healthz")
        api = f"http://127.0.0.1:{http_port}"
        wait_http(f"{api}/readyz", timeout_s=args.setup_timeout)
        view = f"http://127.0.0.1:{faust_port}/v1/fanout/zones/{zone_code}/"
        deadline = time.monotonic() + args.setup_timeout
        known = 0
        while known < len(members):
            if time.monotonic() > deadline:
                raise SystemExit(f"the fan-out knows {known} members after the timeout")
            await asyncio.sleep(1)
            try:
                known = httpx.get(view, timeout=5).json()["members"]
            except (httpx.HTTPError, KeyError):
                known = 0
        print(
            f"fan-out knows every member after {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        # The senders' consumers must have joined before the clock starts.
        await asyncio.sleep(3)

        raw = await raw_producer_throughput(settings, count=total, ring=ring)
        print(
            f"raw producer: {raw['records_per_s']} records/s "
            f"({raw['record_bytes']} bytes each)",
            flush=True,
        )
        await asyncio.sleep(1)

        delivery_topics = [prefix + Delivery.TOPIC.format(channel=c) for c in CHANNELS]
        before = await end_offsets(settings, delivery_topics)
        cpu_before = {role: cpu_seconds(p.pid) for role, p in zip(roles, processes)}
        token = issue_token(secret=settings.jwt_secret, role="zone", scope=zone_code)
        alert_id = f"bench-{run_id}"
        body = {
            "alert_id": alert_id,
            "category": "burglary",
            "urgency": "Immediate",
            "channels": list(CHANNELS),
            "target": {"kind": "zone"},
            "texts": {
                "nl": {
                    "headline": "Inbraken in de wijk",
                    "body": "Sluit ramen en deuren en meld verdachte voertuigen.",
                },
                "fr": {
                    "headline": "Cambriolages dans le quartier",
                    "body": "Fermez portes et fenetres.",
                },
            },
        }
        posted = time.time()
        for _ in range(5):
            # The shared database sometimes stalls under load; the id makes a
            # retry safe (409 means the first attempt was stored).
            response = httpx.post(
                f"{api}/v1/alerts",
                json=body,
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code < 500:
                break
            await asyncio.sleep(2)
        if response.status_code not in (202, 409):
            raise SystemExit(f"alert refused: {response.status_code} {response.text}")
        status = httpx.get(
            f"{api}/v1/alerts/{alert_id}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        accepted = datetime.fromisoformat(status["accepted_at"]).replace(tzinfo=UTC)
        accepted_s = accepted.timestamp()

        topic_done = None
        deadline = time.monotonic() + args.timeout
        progress = 0.0
        while time.monotonic() < deadline:
            counts = httpx.get(f"{env['GATEWAY_URL']}/v1/counts", timeout=10).json()
            if topic_done is None:
                now = await end_offsets(settings, delivery_topics)
                if sum(now[tp] - before[tp] for tp in now) >= total:
                    topic_done = time.time()
            if counts["count"] >= total:
                break
            if time.monotonic() - progress > 5:
                progress = time.monotonic()
                print(
                    f"  {time.time() - accepted_s:5.1f} s: {counts['count']} of "
                    f"{total} handed over",
                    flush=True,
                )
            await asyncio.sleep(0.2)
        after = await end_offsets(settings, delivery_topics)
        cpu = {
            role: round(cpu_seconds(p.pid) - cpu_before[role], 2)
            for role, p in zip(roles, processes)
        }
        newest_ms = await last_record_times(settings, start=before, end=after)

        received = []
        path = run_dir / "gateway" / "received.jsonl"
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("alert_id") == alert_id:
                received.append(
                    datetime.fromisoformat(record["received_at"]).timestamp()
                )
        latencies = sorted(at - accepted_s for at in received)
        last = latencies[-1] if latencies else None
        within_5 = sum(1 for value in latencies if value <= GOAL_P95_S)
        results = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine_cores": os.cpu_count(),
            "bins": len(bins),
            "members": len(members),
            "deliveries_expected": total,
            "deliveries_by_channel": per_channel,
            "deliveries_handed_over": len(received),
            "deliveries_on_topics": sum(after[tp] - before[tp] for tp in after),
            "accept_after_post_s": round(accepted_s - posted, 3),
            "last_on_channel_topic_s": (
                round(newest_ms / 1000 - accepted_s, 3) if newest_ms else None
            ),
            "last_on_channel_topic_polled_s": (
                round(topic_done - accepted_s, 3) if topic_done else None
            ),
            "first_handover_s": round(latencies[0], 3) if latencies else None,
            "last_handover_s": round(last, 3) if last is not None else None,
            "handover_p50_s": round(statistics.median(latencies), 3)
            if latencies
            else None,
            "handover_p95_s": round(percentile(latencies, 0.95), 3)
            if latencies
            else None,
            "handed_over_within_5s_share": round(within_5 / total, 4),
            "deliveries_per_s": round(len(received) / last) if last else None,
            "raw_producer": raw,
            "cpu_seconds_by_role": cpu,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "goal": {"p95_within_s": GOAL_P95_S, "all_within_s": GOAL_ALL_S},
            "goal_met": bool(
                latencies
                and len(received) == total
                and percentile(latencies, 0.95) <= GOAL_P95_S
                and last <= GOAL_ALL_S
            ),
            "status_role_running": args.with_status,
        }
    finally:
        await producer.stop()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep:
            await delete_topics(settings, prefixes=[prefix, env["FAUST_APP_ID"]])
    return results


def write_results(results: dict[str, Any], *, out: Path, width: int) -> None:
    """Print a benchmark's figures, one a line, and write them to `out` as JSON."""
    for name, value in results.items():
        print(f"{name:{width}} {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


def main() -> None:
    """Parses the options, runs the benchmark, prints and stores the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--bins", type=int, default=ACTIVE_BINS)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait")
    parser.add_argument("--setup-timeout", type=float, default=600)
    parser.add_argument(
        "--with-status",
        action="store_true",
        help="also run the status board role during the run",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the benchmark's own topics in place"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run every role under cProfile, next to its log",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench-results" / "fanout.json"
    )
    args = parser.parse_args()
    write_results(asyncio.run(run(args)), out=args.out, width=32)


if __name__ == "__main__":
    main()
