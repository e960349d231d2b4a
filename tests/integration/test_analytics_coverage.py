"""Coverage on the real stack: registry events in, figures out through Kafka and HTTP.

One worker and one HTTP process serve the whole module (with a unique Faust app
id and coverage topics of their own, so that the figures other workers on the
same broker publish do not mix in); every test uses its own zone and province
codes, so tests of other services on the same broker do not disturb the figures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared import catalogue, events
from shared.envelope import decode
from shared.kafka import ensure_topics, new_producer, publish_event, publish_tombstone
from shared.settings import ServiceSettings
from tests.builders import analytics as b
from tests.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    ServiceProcess,
    free_port,
    unique,
    wait_http,
)

MODULE = "services.analytics"
VOLATILE = ("updated_at",)


class Stack:
    """The worker and HTTP processes of the module, and how to reach them."""

    def __init__(self) -> None:
        self.app_id = unique("analytics-test")
        self.worker_port = free_port()
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.coverage_topic = unique("test-analytics-coverage")
        self.area_topic = unique("test-analytics-coverage-province")
        self.worker: ServiceProcess | None = None
        self.api: ServiceProcess | None = None

    def topics_env(self) -> dict[str, str]:
        """The output topics of this stack, for both processes."""
        return {"COVERAGE_TOPIC": self.coverage_topic, "AREA_TOPIC": self.area_topic}

    def start_worker(self) -> None:
        """Starts the worker and waits until it is ready."""
        env = {
            "FAUST_APP_ID": self.app_id,
            "WORKER_METRICS_PORT": str(self.worker_port),
            "PUBLISH_INTERVAL_S": "0.1",
            **self.topics_env(),
        }
        log = ROOT / ".run" / "logs" / "tests" / f"{unique('analytics-worker')}.log"
        self.worker = ServiceProcess(
            module=MODULE, role="worker", env=env, log=log
        ).start()
        wait_http(f"http://127.0.0.1:{self.worker_port}/readyz", timeout_s=60)

    def start_api(self) -> None:
        """Starts the HTTP process and waits until it has read the coverage topics."""
        env = {"HTTP_PORT": str(self.api_port), **self.topics_env()}
        log = ROOT / ".run" / "logs" / "tests" / f"{unique('analytics-api')}.log"
        self.api = ServiceProcess(module=MODULE, role="api", env=env, log=log).start()
        wait_http(f"{self.api_url}/readyz", timeout_s=120)


@pytest.fixture(scope="module")
def stack(platform: ServiceSettings) -> Iterator[Stack]:
    """A worker and an HTTP process shared by the module's tests."""
    running = Stack()
    asyncio.run(
        ensure_topics(
            platform,
            topics=[
                catalogue.Topic(
                    name=name,
                    key="zone or province code",
                    value=value,
                    producer="test",
                    consumers=(),
                    partitions=2,
                    cleanup_policy="compact",
                    description="",
                )
                for name, value in (
                    (running.coverage_topic, "ZoneCoverage"),
                    (running.area_topic, "AreaCoverage"),
                )
            ],
        )
    )
    # The shared registry topics hold every test's and benchmark's history (hundreds
    # of thousands of members): the worker starts where they are now, and every
    # zone, BIN and member these tests look at comes later.
    asyncio.run(b.skip_registry_history(platform, group=running.app_id))
    try:
        running.start_worker()
        running.start_api()
        asyncio.run(wait_until_caught_up(platform, running))
        yield running
    finally:
        for process in (running.api, running.worker):
            if process is not None:
                process.stop()


async def wait_until_caught_up(settings: ServiceSettings, stack: Stack) -> None:
    """Waits until a fresh worker has read the registry topics' history.

    Sentinel members spread over every membership partition (almost surely); once
    all are counted, the worker processes new events as they come.
    """
    zone, bin_id = unique("pz-sentinel"), unique("bin")
    producer = new_producer(settings)
    await producer.start()
    try:
        await send(
            producer,
            b.zone(zone, province_nis=unique("p")),
            b.bin_(bin_id, zone=zone),
            *(b.member(unique("m"), bin_id=bin_id, zone=zone) for _ in range(12)),
        )
    finally:
        await producer.stop()
    await wait_for(
        f"{stack.api_url}/v1/coverage/zones/{zone}",
        has(active_members=12),
        timeout_s=240,
    )


@pytest.fixture
async def producer(platform: ServiceSettings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer standing in for the registry."""
    started = new_producer(platform)
    await started.start()
    yield started
    await started.stop()


async def send(producer: AIOKafkaProducer, *snapshots: events.Event) -> None:
    """Publishes snapshots keyed as the registry keys them."""
    for snapshot in snapshots:
        key = {
            events.ZoneSnapshot: "zone",
            events.BinSnapshot: "bin_id",
            events.MembershipSnapshot: "member_id",
        }[type(snapshot)]
        await publish_event(
            producer,
            topic=snapshot.TOPIC,
            key=getattr(snapshot, key),
            event=snapshot,
            source="registry",
        )


async def wait_for(
    url: str, check: Callable[[dict[str, Any]], bool], *, timeout_s: float = 20
) -> dict[str, Any]:
    """Polls a JSON URL until `check` holds for its answer."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            response = await client.get(url)
            if response.status_code == 200:
                last = response.json()
                if check(last):
                    return last
            else:
                last = response.status_code
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never satisfied the check; last answer: {last}")


def figures(record: dict[str, Any]) -> dict[str, Any]:
    """A coverage record without its timestamp."""
    return {k: v for k, v in record.items() if k not in VOLATILE}


def has(**wanted: Any) -> Callable[[dict[str, Any]], bool]:
    """A check that the record holds these values."""
    return lambda record: all(record.get(k) == v for k, v in wanted.items())


async def test_counts_follow_joins_moves_erasures_territory_and_full_coverage(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    province = unique("p")
    z1, z2 = unique("pz"), unique("pz")
    units = [f"{z1}-u{i}" for i in range(4)]
    a, c, d = unique("bin"), unique("bin"), unique("bin")
    m = [unique("m") for _ in range(4)]
    zone_url = f"{stack.api_url}/v1/coverage/zones/{z1}"
    await send(
        producer,
        b.zone(z1, units=units, province_nis=province, province_name="Test"),
        b.zone(z2, units=[f"{z2}-u0"], province_nis=province, province_name="Test"),
        b.bin_(a, zone=z1, territory=units[:2]),
        b.bin_(c, zone=z1, territory=units[2:3], kind="business"),
        b.bin_(d, zone=z2, territory=[f"{z2}-u0"], kind="farming"),
        *(b.member(x, bin_id=a, zone=z1) for x in m[:2]),
        b.member(m[2], bin_id=c, zone=z1),
        b.member(m[3], bin_id=d, zone=z2),
    )
    record = await wait_for(zone_url, has(active_members=3, active_bins=2))
    assert (record["units_covered"], record["units_total"]) == (3, 4)
    assert record["coverage_ratio"] == 0.75 and record["fully_covered"] is False
    assert record["active_bins_by_kind"] == {
        "residential": 1,
        "business": 1,
        "farming": 0,
    }
    area = await wait_for(
        f"{stack.api_url}/v1/coverage/provinces/{province}",
        has(active_members=4, active_bins=3),
    )
    assert (area["zones"], area["units_total"], area["units_covered"]) == (2, 5, 4)
    assert area["fully_covered_zones"] == [z2]

    # A member moves to the other zone's BIN, another is erased (tombstone).
    await send(producer, b.member(m[0], bin_id=d, zone=z2, version=2))
    await publish_tombstone(
        producer,
        topic=events.MembershipSnapshot.TOPIC,
        key=m[1],
        event_type=events.MembershipSnapshot.EVENT_TYPE,
        source="registry",
    )
    await wait_for(zone_url, has(active_members=1))
    await wait_for(f"{stack.api_url}/v1/coverage/zones/{z2}", has(active_members=2))

    # The business BIN takes the last unit: the zone becomes fully covered ...
    await send(
        producer, b.bin_(c, zone=z1, territory=units[2:], kind="business", version=2)
    )
    record = await wait_for(zone_url, has(fully_covered=True))
    assert record["units_covered"] == 4
    await wait_for(
        f"{stack.api_url}/v1/coverage/provinces/{province}",
        lambda r: sorted(r["fully_covered_zones"]) == sorted([z1, z2]),
    )
    # ... and loses it when the other BIN goes dormant.
    await send(
        producer, b.bin_(a, zone=z1, territory=units[:2], status="dormant", version=2)
    )
    record = await wait_for(zone_url, has(fully_covered=False, active_bins=1))
    assert (record["units_covered"], record["active_members"]) == (2, 1)

    # Replayed and older snapshots change nothing; a later join shows they were read.
    await send(
        producer,
        b.bin_(a, zone=z1, territory=units, version=1),
        b.member(m[0], bin_id=c, zone=z1, version=1),
        b.member(m[2], bin_id=c, zone=z1, status="erased", version=1),
        b.zone(z1, units=units[:1], province_nis=province, version=1),
    )
    late = unique("m")
    await send(producer, b.member(late, bin_id=c, zone=z1))
    record = await wait_for(zone_url, has(active_members=2))
    assert (record["units_covered"], record["units_total"], record["active_bins"]) == (
        2,
        4,
        1,
    )


async def tombstone(
    producer: AIOKafkaProducer, model: type[events.Event], key: str
) -> None:
    """Publishes the registry's tombstone of a key."""
    await publish_tombstone(
        producer,
        topic=model.TOPIC,
        key=key,
        event_type=model.EVENT_TYPE,
        source="registry",
    )


async def test_erasure_removal_and_repeats_adjust_the_right_counts(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    province, zone, other = unique("p"), unique("pz"), unique("pz")
    units = [f"{zone}-u0", f"{zone}-u1"]
    a, c = unique("bin"), unique("bin")
    m = [unique("m") for _ in range(3)]
    zone_url = f"{stack.api_url}/v1/coverage/zones/{zone}"
    area_url = f"{stack.api_url}/v1/coverage/provinces/{province}"
    country_url = f"{stack.api_url}/v1/coverage/provinces/BE"
    snapshots = [
        b.zone(zone, units=units, province_nis=province),
        b.zone(other, units=[f"{other}-u0"], province_nis=province),
        b.bin_(a, zone=zone, territory=units[:1]),
        b.bin_(c, zone=zone, territory=units[1:], kind="farming"),
        b.member(m[0], bin_id=a, zone=zone),
        b.member(m[1], bin_id=a, zone=zone),
        b.member(m[2], bin_id=c, zone=zone),
    ]
    await send(producer, *snapshots)
    full = await wait_for(zone_url, has(active_members=3, fully_covered=True))
    await wait_for(country_url, lambda r: zone in r["fully_covered_zones"])
    # The very same snapshots again, as a redelivery would bring them: nothing moves
    # but the one join sent after them.
    await send(producer, *snapshots)
    await send(producer, b.member(unique("m"), bin_id=a, zone=zone))
    after_repeat = await wait_for(zone_url, has(active_members=4))
    assert figures(after_repeat) == {**figures(full), "active_members": 4}

    # A member erased by status, then the farming BIN removed (tombstone).
    await send(
        producer, b.member(m[1], bin_id=a, zone=zone, status="erased", version=2)
    )
    await wait_for(zone_url, has(active_members=3))
    await tombstone(producer, events.BinSnapshot, c)
    record = await wait_for(zone_url, has(active_bins=1, fully_covered=False))
    assert (record["active_members"], record["units_covered"]) == (2, 1)
    assert record["active_bins_by_kind"]["farming"] == 0
    await wait_for(country_url, lambda r: zone not in r["fully_covered_zones"])
    # Re-created, the BIN counts its still-active member again.
    await send(producer, b.bin_(c, zone=zone, territory=units[1:], kind="farming"))
    await wait_for(zone_url, has(active_members=3, fully_covered=True))
    # A zone removed from the registry disappears from the zone and province answers.
    await wait_for(area_url, has(zones=2))
    await tombstone(producer, events.ZoneSnapshot, other)
    await wait_for(area_url, has(zones=1))
    async with httpx.AsyncClient(timeout=3) as client:
        deadline = time.monotonic() + 20
        while (
            await client.get(f"{stack.api_url}/v1/coverage/zones/{other}")
        ).status_code != 404:
            assert time.monotonic() < deadline, "the removed zone is still served"
            await asyncio.sleep(0.1)


async def test_per_bin_member_counts_hide_small_numbers(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    zone, big, small = unique("pz"), unique("bin"), unique("bin")
    await send(
        producer,
        b.zone(zone, province_nis=unique("p")),
        b.bin_(big, zone=zone, territory=[f"{zone}-u0"]),
        b.bin_(small, zone=zone, territory=[f"{zone}-u1"]),
        *(b.member(unique("m"), bin_id=big, zone=zone) for _ in range(6)),
        *(b.member(unique("m"), bin_id=small, zone=zone) for _ in range(2)),
    )
    zone_record = await wait_for(
        f"{stack.api_url}/v1/coverage/zones/{zone}", has(active_members=8)
    )
    assert zone_record["active_members"] == 8, "zone totals stay exact"
    # The HTTP process reads the registry's whole history for these counts.
    answer = await wait_for(
        f"{stack.api_url}/v1/coverage/zones/{zone}/bins",
        lambda r: (
            {x["bin_id"]: x["active_members"] for x in r["bins"]}
            == {big: 6, small: "<5"}
        ),
        timeout_s=300,
    )
    assert answer["small_count_threshold"] == 5
    assert "2" not in json.dumps([x["active_members"] for x in answer["bins"]])


async def test_report_alert_and_delivery_figures(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    zone, busy, quiet = unique("pz"), unique("9"), unique("8")
    reports = [unique("r") for _ in range(7)]
    for index, report_id in enumerate(reports):
        municipality = busy if index < 6 else quiet
        await publish_event(
            producer,
            topic=events.ReportSubmitted.TOPIC,
            key=zone,
            source="reports",
            event=b.report(report_id, zone=zone, municipality_nis=municipality),
        )
    # A redelivered report counts once.
    await publish_event(
        producer,
        topic=events.ReportSubmitted.TOPIC,
        key=zone,
        source="reports",
        event=b.report(reports[0], zone=zone, municipality_nis=busy),
    )
    for status, outcome in (("under_review", None), ("closed", "site_found")):
        await publish_event(
            producer,
            topic=events.ReportStatusChanged.TOPIC,
            key=reports[0],
            source="reports",
            event=b.report_status(
                reports[0], zone=zone, status=status, outcome=outcome
            ),
        )
    alert = unique("a")
    for action in ("alert", "alert", "update"):
        await publish_event(
            producer,
            topic=events.AlertAccepted.TOPIC,
            key=zone,
            source="messaging",
            event=b.alert(alert, zone=zone, action=action),
        )
    for member, status, after_s in (
        ("m1", "handed_over", 2.0),
        ("m2", "handed_over", 4.0),
        ("m3", "failed", 1.0),
        ("m1", "handed_over", 9.0),
    ):
        await publish_event(
            producer,
            topic=events.DeliveryStatus.TOPIC,
            key=alert,
            source="messaging",
            event=b.delivery_status(
                alert, member_id=member, zone=zone, status=status, after_s=after_s
            ),
        )

    def counted(answer: dict[str, Any]) -> bool:
        return sum(row["reports"] for row in answer["zones"]) == 7 and any(
            row["status"] == "closed" for row in answer["outcomes"]
        )

    weekly = await wait_for(f"{stack.api_url}/v1/reports/weekly?zone={zone}", counted)
    assert [(r["category"], r["week"], r["reports"]) for r in weekly["zones"]] == [
        ("plantation", "2026-W07", 7)
    ]
    by_place = {
        (r["municipality_nis"]): r["reports"]
        for r in weekly["municipalities"]
        if r["municipality_nis"] in (busy, quiet)
    }
    assert by_place == {busy: 6, quiet: "<5"}, "one report in a municipality is hidden"
    outcomes = {
        (r["status"], r["outcome"]): r["reports"]
        for r in weekly["outcomes"]
        if r["zone"] == zone
    }
    assert outcomes == {("closed", "site_found"): 1}

    summary = await wait_for(
        f"{stack.api_url}/v1/deliveries?zone={zone}",
        lambda r: sum(r["channels"].get("sms", {}).get("statuses", {}).values()) == 3,
    )
    assert summary["alerts_per_zone"] == {zone: 1}
    sms = summary["channels"]["sms"]
    assert sms["statuses"] == {"failed": 1, "handed_over": 2}
    assert sms["handover_seconds"] == {"p50": 3.0, "p95": 3.9, "max": 4.0}


async def test_compacted_topic_holds_the_latest_figures_and_csv_agrees(
    stack: Stack, producer: AIOKafkaProducer, platform: ServiceSettings
) -> None:
    province, zone, bin_id = unique("p"), unique("pz"), unique("bin")
    await send(
        producer,
        b.zone(zone, units=[f"{zone}-u0", f"{zone}-u1"], province_nis=province),
        b.bin_(bin_id, zone=zone, territory=[f"{zone}-u0"]),
        *(b.member(unique("m"), bin_id=bin_id, zone=zone) for _ in range(5)),
    )
    served = await wait_for(
        f"{stack.api_url}/v1/coverage/zones/{zone}", has(active_members=5)
    )
    latest = await read_latest(platform, stack.coverage_topic, zone)
    assert figures(latest) == figures(served)
    for topic in (events.ZoneCoverage.TOPIC, events.AreaCoverage.TOPIC):
        assert await cleanup_policy(platform, topic) == "compact"
    csv_text = httpx.get(
        f"{stack.api_url}/v1/coverage/zones.csv", params={"province": province}
    ).text
    header, row = csv_text.strip().split("\n")
    assert header.startswith("zone,name,province_nis,active_bins,active_members")
    assert row.startswith(f"{zone},PZ {zone},{province},1,5,2,1,0.5,False")
    await wait_for(
        f"{stack.api_url}/v1/coverage/provinces/{province}", has(active_members=5)
    )
    area_rows = httpx.get(f"{stack.api_url}/v1/coverage/provinces.csv").text.split("\n")
    assert area_rows[0].startswith("area,name,zones,active_bins,active_members")
    assert any(
        row.startswith(f"{province},") and ",1,1,5,2,1,0.5,," in row
        for row in area_rows
    )
    missing = httpx.get(f"{stack.api_url}/v1/coverage/zones/{unique('nope')}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def cleanup_policy(settings: ServiceSettings, topic: str) -> str:
    """The `cleanup.policy` the broker applies to a topic."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        answer = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    configs = answer[0].resources[0][4]
    return next(value for name, value, *_ in configs if name == "cleanup.policy")


async def read_latest(
    settings: ServiceSettings, topic: str, key: str
) -> dict[str, Any]:
    """The last record of a key on a topic, read from the beginning."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.kafka_client_options(),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    latest: dict[str, Any] | None = None
    try:
        ends = None
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for record in records:
                    if record.key == key.encode():
                        received = decode(
                            key=record.key, value=record.value, headers=record.headers
                        )
                        latest = received.event.model_dump(mode="json")
            if ends is None and consumer.assignment():
                ends = await consumer.end_offsets(list(consumer.assignment()))
            if ends and all(
                [await consumer.position(tp) >= e for tp, e in ends.items()]
            ):
                break
    finally:
        await consumer.stop()
    assert latest is not None, f"no record for {key} on {topic}"
    return latest


async def test_the_live_stream_delivers_a_change(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    zone, bin_id = unique("pz"), unique("bin")
    await send(
        producer,
        b.zone(zone, province_nis=unique("p")),
        b.bin_(bin_id, zone=zone, territory=[f"{zone}-u0"]),
    )
    await wait_for(f"{stack.api_url}/v1/coverage/zones/{zone}", has(active_bins=1))
    async with (
        httpx.AsyncClient(timeout=20) as client,
        client.stream("GET", f"{stack.api_url}/v1/coverage/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith(":"), "the stream opens with a comment"
        await send(producer, b.member(unique("m"), bin_id=bin_id, zone=zone))
        event = ""
        async with asyncio.timeout(15):
            async for line in lines:
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "zone":
                    data = json.loads(line[5:])
                    if data.get("zone") == zone:
                        break
        assert data["active_members"] == 1


async def test_figures_are_identical_after_a_worker_restart(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    province, zone = unique("p"), unique("pz")
    bins = [unique("bin") for _ in range(3)]
    units = [f"{zone}-u{i}" for i in range(3)]
    await send(
        producer,
        b.zone(zone, units=units, province_nis=province),
        *(b.bin_(x, zone=zone, territory=[u]) for x, u in zip(bins, units)),
        *(b.member(unique("m"), bin_id=bins[i % 3], zone=zone) for i in range(7)),
    )
    zone_url = f"{stack.api_url}/v1/coverage/zones/{zone}"
    area_url = f"{stack.api_url}/v1/coverage/provinces/{province}"
    before = await wait_for(zone_url, has(active_members=7, fully_covered=True))
    area_before = await wait_for(area_url, has(active_members=7))
    assert stack.worker is not None
    stack.worker.stop()
    stack.start_worker()
    # The restarted worker republishes every zone from its rebuilt table.
    # Recovery replays the table's changelog, which holds every registry key the
    # shared test broker has seen: allow it time.
    after = await wait_for(
        zone_url, lambda r: r["updated_at"] != before["updated_at"], timeout_s=240
    )
    assert figures(after) == figures(before)
    area_after = await wait_for(
        area_url, lambda r: r["updated_at"] != area_before["updated_at"]
    )
    assert figures(area_after) == figures(area_before)
    # Running sums continue from the rebuilt state rather than from zero.
    await send(producer, b.member(unique("m"), bin_id=bins[0], zone=zone))
    await wait_for(zone_url, has(active_members=8))




async def test_the_dashboard_shows_a_registry_change_live(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    province, zone, other = unique("p"), unique("pz"), unique("pz")
    bin_id, other_bin = unique("bin"), unique("bin")
    units = [f"{zone}-u0", f"{zone}-u1"]
    await send(
        producer,
        b.zone(zone, units=units, province_nis=province, province_name="Testland"),
        b.zone(
            other,
            units=[f"{other}-u0"],
            province_nis=province,
            province_name="Testland",
        ),
        b.bin_(bin_id, zone=zone, territory=units[:1]),
        b.bin_(other_bin, zone=other, territory=[f"{other}-u0"]),
        b.member(unique("m"), bin_id=bin_id, zone=zone),
    )
    await wait_for(f"{stack.api_url}/v1/coverage/zones/{zone}", has(active_members=1))
    await wait_for(f"{stack.api_url}/v1/coverage/zones/{other}", has(active_bins=1))
    row = f'tr[data-zone="{zone}"]'
    outside: list[str] = []
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith(stack.api_url) else outside.append(r.url)
                ),
            )
            await page.goto(f"{stack.api_url}/?province={province}")
            members = page.locator(f'{row} td[data-field="active_members"]')
            await members.wait_for(timeout=10000)
            assert await members.text_content() == "1"
            # Sorted by share covered: the fully covered zone first, and marked.
            assert await bar_order(page) == [other, zone]
            assert (
                "fully covered"
                in await page.locator(f'tr[data-zone="{other}"]').text_content()
            )
            assert "fully covered" not in await page.locator(row).text_content()
            await page.locator("#status", has_text="live").wait_for(timeout=10000)

            await send(producer, b.member(unique("m"), bin_id=bin_id, zone=zone))
            await page.wait_for_function(
                "sel => document.querySelector(sel)?.textContent === '2'",
                arg=f'{row} td[data-field="active_members"]',
                timeout=15000,
            )
            # A territory change covers the zone's last unit: the page follows.
            await send(producer, b.bin_(bin_id, zone=zone, territory=units, version=2))
            await page.wait_for_function(
                "sel => document.querySelector(sel)?.textContent === '100.0 %'",
                arg=f'{row} td[data-field="coverage_ratio"]',
                timeout=15000,
            )
            await page.locator(row, has_text="fully covered").wait_for(timeout=5000)
            summary = await page.locator("#summary").text_content()
            assert "Testland" in summary and "2 zones fully covered" in summary
        finally:
            await browser.close()
    assert outside == [], "the dashboard loads nothing from other hosts"


async def bar_order(page: Any) -> list[str]:
    """The zone codes of the bar chart, top to bottom."""
    return await page.eval_on_selector_all(
        "#bars .bar", "bars => bars.map(bar => bar.dataset.zone)"
    )
